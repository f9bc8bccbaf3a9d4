# A flood on the node port at ulimit -n 1024: 2,000 idle connections from
# 100 addresses and 200 of garbage. Meanwhile a job over an existing link,
# a new peer's first job and --status all work; the listener's memory and
# log stay small, and it keeps descriptors for what matters.
source "$JSD_TEST_LIB"
J='"jobs": {"hello": {"command": ["/bin/echo", "hello"]}}'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
# The flood's idle connections fill every pending-handshake slot; only the
# 1 s first-message deadline frees them before beta's handshake timeout,
# set far above it so that a first job in time is that deadline's doing.
HT=60000
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455"}' "$J, \"handshake_timeout_ms\": $HT"
make_node gamma 127.0.0.4 - '{"beta":"127.0.0.3:4455"}'
start_node alpha
(ulimit -n 1024 && start_node beta) || fail "beta did not start at ulimit -n 1024"
# start_node ran in a subshell: find beta's listener by its config.
NODE_PID[beta]=$(pgrep -f "jsd-listener --config $T/beta.json")
[ -n "${NODE_PID[beta]}" ] || fail "no beta listener"
start_node gamma
[ "$(awk '/Max open files/ {print $4}' "/proc/${NODE_PID[beta]}/limits")" = 1024 ] || fail "beta's descriptor limit is not 1024"
node_cmd alpha jsd-submit beta hello >/dev/null || fail "alpha -> beta before the flood"
rss() { awk '/VmRSS/ {print $2}' "/proc/${NODE_PID[beta]}/status"; }
rss0=$(rss)
lines0=$(wc -l < "$T/beta.log")

mkfifo "$T/flood.ready" "$T/flood.stop"
python3 - "$T/flood.ready" "$T/flood.stop" <<'PY' &
import os, socket, sys
socks = []
for i in range(2000):  # idle: connect and say nothing
    s = socket.socket()
    s.bind((f"127.0.1.{i % 100 + 1}", 0))
    try:
        s.connect(("127.0.0.3", 4455))
    except OSError:
        pass
    socks.append(s)
for i in range(200):  # garbage
    s = socket.socket()
    s.bind((f"127.0.2.{i % 50 + 1}", 0))
    try:
        s.connect(("127.0.0.3", 4455))
        s.send(os.urandom(3000))
    except OSError:
        pass
    socks.append(s)
with open(sys.argv[1], "w") as f:
    f.write("ready\n")
open(sys.argv[2]).read()  # hold everything until told
PY
FLOOD=$!
CLEANUP_HOOKS+=("kill $FLOOD 2>/dev/null")
read -r l < "$T/flood.ready" || fail "the flood did not start"
fds=$(ls "/proc/${NODE_PID[beta]}/fd" | wc -l)
node_cmd alpha jsd-submit beta hello >/dev/null || fail "a job over an existing link failed during the flood"
t0=$(date +%s%N)
node_cmd gamma jsd-submit beta hello >/dev/null || fail "a new peer's first job failed during the flood"
cold_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
node_cmd beta jsd-listener --status >/dev/null || fail "--status failed during the flood"
rss1=$(rss)
echo stop > "$T/flood.stop"
wait $FLOOD
lines=$(( $(wc -l < "$T/beta.log") - lines0 ))
grow=$(( (rss1 - rss0) / 1024 ))
# AddressSanitizer keeps freed memory in quarantine: a looser bound there.
limit=16
grep -q __asan_init "$JSD_BIN/jsd-listener" && limit=64
[ $grow -lt $limit ] || fail "RSS grew by $grow MiB during the flood"
[ $lines -lt 100 ] || fail "the flood wrote $lines log lines"
[ $fds -lt 900 ] || fail "beta held $fds descriptors during the flood"
kill -0 "${NODE_PID[beta]}" || fail "beta died"
# Without the deadline the flood's slots free up at HT after they were
# taken, a little before HT after t0: half of HT tells the two apart.
[ $cold_ms -lt $((HT / 2)) ] || fail "a new peer's first job took $cold_ms ms: the flood held the node port until beta's handshake timeout ($HT ms)"
pass "RSS +$grow MiB, $lines log lines, $fds descriptors during 2,200 connections; a new peer's first job took $cold_ms ms (under half the $HT ms handshake timeout: the 1000 ms first-message deadline freed the node port)"
