# The systemd service: Type=notify, spoken by the real listener to the
# datagram socket NOTIFY_SOCKET names (here one in the abstract namespace
# that the test binds): READY=1 once it answers, STATUS= with its links,
# STOPPING=1 on SIGTERM; its link processes and jobs do not inherit
# NOTIFY_SOCKET. The shipped unit scores <= 4.0 in systemd-analyze security
# and gives a stop more time than job_kill_grace_s.
source "$JSD_TEST_LIB"
SRC=$(dirname "$JSD_TEST_LIB")/../..
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' '"connect_at_startup": ["beta"],
  "jobs": {"env": {"command": ["/usr/bin/env"]}}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}'

# The service manager's end: prints each datagram as one line (\n as |).
sock="@jsd-it-notify-$$-$RANDOM"
/usr/bin/python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1][1:])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
' "$sock" > "$T/notify.out" 2> "$T/notify.err" &
rpid=$!
CLEANUP_HOOKS+=("kill $rpid 2>/dev/null")
wait_until "the fake manager is bound" grep -qx bound "$T/notify.out"

start_node beta
export NOTIFY_SOCKET=$sock
start_node alpha
unset NOTIFY_SOCKET
# start_node returned on --ready-fd; READY=1 was sent at the same moment.
wait_until "alpha says READY=1" grep -q "^READY=1|STATUS=[0-9]* of [0-9]* links up$" "$T/notify.out"
wait_until "alpha's STATUS counts both links up" grep -qx "STATUS=2 of 2 links up" "$T/notify.out"

# Children are not the service: neither the link processes nor the jobs
# learn the manager's address.
for p in $(children_of "${NODE_PID[alpha]}"); do
  tr '\0' '\n' < "/proc/$p/environ" | grep -q '^NOTIFY_SOCKET=' && fail "child $p has NOTIFY_SOCKET"
done
node_cmd alpha jsd-submit -q alpha env > "$T/env.out" || fail "env job failed"
grep -q '^NOTIFY_SOCKET=' "$T/env.out" && fail "a job got NOTIFY_SOCKET"
grep -q '^JSD_JOB_NAME=env$' "$T/env.out" || fail "env job output: $(cat "$T/env.out")"

stop_node alpha
grep -q "^STOPPING=1|" "$T/notify.out" || fail "no STOPPING=1: $(cat "$T/notify.out")"
grep -c "^READY=1" "$T/notify.out" | grep -qx 1 || fail "READY=1 more than once: $(cat "$T/notify.out")"

# The shipped unit.
unit=$SRC/examples/systemd/jsd-listener.service
grep -qx "Type=notify" "$unit" || fail "the unit is not Type=notify"
grep -qx "ExecStartPre=.*jsd-listener -t -q .*" "$unit" || fail "ExecStartPre does not check quietly"
# A good configuration: -t -q prints nothing at all.
out=$(node_cmd beta jsd-listener -t -q 2>&1) && [ -z "$out" ] || fail "-t -q printed: $out"
# A stop sends SIGKILL to jobs after job_kill_grace_s + 1 s: the unit's
# TimeoutStopSec must leave that time (the default grace, as -t prints it).
grace=$(node_cmd beta jsd-listener -t | sed -n 's/^ *"job_kill_grace_s": \([0-9.]*\),*$/\1/p')
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
[ -n "$grace" ] && [ -n "$stop" ] && awk -v g="$grace" -v s="$stop" 'BEGIN { exit !(s >= g + 10) }' ||
  fail "TimeoutStopSec=$stop does not cover job_kill_grace_s=$grace + 10"
if command -v systemd-analyze > /dev/null; then
  systemd-analyze security --offline=yes "$unit" > "$T/security.out" 2>&1
  score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$T/security.out")
  [ -n "$score" ] || fail "no score from systemd-analyze: $(tail -5 "$T/security.out")"
  awk -v s="$score" 'BEGIN { exit !(s <= 4.0) }' || fail "systemd-analyze security: $score > 4.0"
  log "systemd-analyze security --offline=yes: $score"
else
  log "systemd-analyze not installed: the unit's score is not measured"
fi
pass
