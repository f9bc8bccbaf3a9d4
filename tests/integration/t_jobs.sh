# Remote jobs with jsd-submit: exit statuses, signals, streams, parameters,
# refusals, timeout_s, Ctrl-C, --no-wait across restarts, duplicate ids,
# and 50 concurrent submissions from two nodes.
source "$JSD_TEST_LIB"
gen_key "$T/cluster.key"
JOBS=$(cat <<'EOJ'
"jobs": {
    "exit":     { "command": ["/bin/sh", "-c", "exit \"$JSD_PARAM_CODE\""], "max_parallel": 4 },
    "selfkill": { "command": ["/bin/sh", "-c", "kill -9 $$"] },
    "streams":  { "command": ["/bin/sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3"] },
    "gated":    { "command": ["/bin/sh", "-c", "echo first; while [ ! -e \"$JSD_PARAM_GATE\" ]; do sleep 0.02; done; echo second"], "timeout_s": 60 },
    "env":      { "command": ["/usr/bin/env"], "env": { "FROM_CONFIG": "yes", "HOME": "/from/config" } },
    "show":     { "command": ["/bin/sh", "-c", "printf '%s\\n' \"$JSD_PARAM_X\""] },
    "slow":     { "command": ["/bin/sleep", "30"], "timeout_s": 0.5, "max_parallel": 1 },
    "sleeper":  { "command": ["/bin/sh", "-c", "echo $$ > \"$JSD_PARAM_PIDFILE\"; exec sleep 30"] },
    "append":   { "command": ["/bin/sh", "-c", "echo \"$JSD_JOB_ID\" >> \"$JSD_PARAM_FILE\""] },
    "nocmd":    { "command": ["/nonexistent/command"] },
    "bg":       { "command": ["/bin/sh", "-c", "sleep 29.5 2>/dev/null & echo hi"] },
    "huge":     { "command": ["/bin/sh", "-c", "head -c 48000000 /dev/zero"] },
    "big":      { "command": ["/bin/sh", "-c", "seq 1 300000; head -c 1000000 /dev/zero | tr '\\0' '\\377' >&2"] }
  }
EOJ
)
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","gamma":"127.0.0.4:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455"}' "$JOBS"
make_node gamma 127.0.0.4 - '{"alpha":"127.0.0.2:4455","beta":"127.0.0.3:4455"}' "$JOBS, \"allow_adhoc\": [\"alpha\"]"
start_node alpha
start_node beta
start_node gamma
sub() { local n=$1; shift; JSD_CONFIG="$T/$n.json" jsd-submit "$@"; }

# Exit statuses pass through, on a cold pair too (the first submission).
for code in 0 1 3 44 200; do
  sub alpha -q -p CODE=$code beta exit; rc=$?
  [ $rc = $code ] || fail "exit $code came back as $rc"
done
sub alpha -q beta selfkill; rc=$?
[ $rc = 137 ] || fail "SIGKILL gave $rc, not 137"
sub alpha -q beta nocmd 2> "$T/err"; rc=$?
[ $rc = 127 ] && grep -q "cannot start /nonexistent/command" "$T/err" || fail "missing command: $rc $(cat "$T/err")"

# The start confirmation, then stdout and stderr apart, each in order.
sub alpha beta streams > "$T/out" 2> "$T/err" || fail "streams job failed"
[ "$(cat "$T/out")" = "$(printf 'out1\nout2\nout3')" ] || fail "stdout: $(cat "$T/out")"
grep -q "^jsd-submit: beta: job streams started: id [0-9a-f]*, pid [0-9]*$" "$T/err" || fail "no start confirmation: $(cat "$T/err")"
[ "$(grep -v '^jsd-submit' "$T/err")" = "$(printf 'err1\nerr2')" ] || fail "stderr: $(cat "$T/err")"

# Megabytes of output, text and binary, arrive byte for byte.
sub alpha -q beta big > "$T/big.out" 2> "$T/big.err" || fail "big job failed"
seq 1 300000 | cmp -s - "$T/big.out" || fail "big stdout differs ($(wc -c < "$T/big.out") bytes)"
head -c 1000000 /dev/zero | tr '\0' '\377' | cmp -s - "$T/big.err" || fail "big binary stderr differs ($(wc -c < "$T/big.err") bytes)"

# A job whose background child keeps its stdout open: the end comes when
# the job itself has exited (after a short wait for its output), with all of
# its output.
out=$(sub alpha -q beta bg) || fail "bg job failed"
[ "$out" = hi ] || fail "bg job output: $out"
pkill -f "^sleep 29.5$" || true

# A reader that stops: the backpressure reaches the job on the other node
# (its output is paused there) instead of filling memory; nothing is lost.
gate="$T/reader.gate"
( sub alpha -q beta huge; echo "rc=$?" > "$T/huge.rc" ) | { head -c 1000 > /dev/null; while [ ! -e "$gate" ]; do sleep 0.05; done; wc -c > "$T/huge.count"; } &
hpid=$!
wait_until "beta pauses the job's output" grep -q "output paused" "$T/beta.log"
touch "$gate"
wait "$hpid"
[ "$(cat "$T/huge.rc")" = "rc=0" ] || fail "huge job: $(cat "$T/huge.rc")"
[ "$(cat "$T/huge.count")" = $((48000000 - 1000)) ] || fail "huge job: $(cat "$T/huge.count") bytes after the first 1000"

# Output arrives while the job runs: the job waits for a file that the test
# creates only after it has seen the first line.
sub alpha -q -p GATE="$T/gate" beta gated > "$T/gated.out" &
gpid=$!
wait_until "the first line arrives while the job runs" grep -q first "$T/gated.out"
grep -q second "$T/gated.out" && fail "the job did not wait"
touch "$T/gate"
wait "$gpid" || fail "gated job failed"
[ "$(cat "$T/gated.out")" = "$(printf 'first\nsecond')" ] || fail "gated output: $(cat "$T/gated.out")"

# Parameters are environment variables, passed as data, never through a shell.
evil='$(touch '"$T"'/pwned); `touch '"$T"'/pwned2`; x="; touch '"$T"'/pwned3'
sub alpha -q -p X="$evil" beta show > "$T/show.out" || fail "show job failed"
[ "$(cat "$T/show.out")" = "$evil" ] || fail "parameter changed on the way: $(cat "$T/show.out")"
ls "$T"/pwned* 2>/dev/null && fail "a parameter ran a command"
# A value keeps its commas: each -p is one parameter.
sub alpha -q -p 'X=a,b,c' beta show > "$T/show.out" || fail "show job with commas failed"
[ "$(cat "$T/show.out")" = "a,b,c" ] || fail "a value with commas changed: $(cat "$T/show.out")"
sub alpha -q -p 'X=1,Y=2' beta env > "$T/env.out" || fail "env job with commas failed"
grep -qx 'JSD_PARAM_X=1,Y=2' "$T/env.out" && ! grep -q '^JSD_PARAM_Y=' "$T/env.out" || fail "-p X=1,Y=2 was split: $(grep JSD_PARAM "$T/env.out")"
sub alpha -q -p HELLO=world -p EMPTY= beta env > "$T/env.out" || fail "env job failed"
for v in JSD_PARAM_HELLO=world JSD_PARAM_EMPTY= JSD_JOB_NAME=env JSD_FROM_NODE=alpha FROM_CONFIG=yes JSD_NODE=beta HOME=/from/config; do
  grep -qx "$v" "$T/env.out" || fail "job environment lacks $v"
done
# One value per name: the job's env overrides the listener's; JSD_* is jsd's
# (a job env naming one is a configuration mistake: t_lifecycle).
[ "$(grep -c '^HOME=' "$T/env.out")" = 1 ] && [ "$(grep -c '^JSD_NODE=' "$T/env.out")" = 1 ] || fail "duplicate variables: $(cat "$T/env.out")"
grep -q "^JSD_JOB_ID=[0-9a-f]\{16\}$" "$T/env.out" || fail "no JSD_JOB_ID"
sub alpha -q -p 'BAD-NAME=1' beta env 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -q "invalid parameter name 'BAD-NAME'" "$T/err" || fail "bad param name: $rc $(cat "$T/err")"

# Only what the node defines runs.
sub alpha beta nosuchjob 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "undefined job gave $rc"
grep -qx "jsd-submit: error: no job 'nosuchjob' on beta" "$T/err" || fail "unclear: $(cat "$T/err")"
sub alpha beta -- /usr/bin/touch "$T/adhoc-beta" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "refused ad-hoc gave $rc"
grep -q "ad-hoc commands from alpha are not allowed on beta" "$T/err" || fail "unclear: $(cat "$T/err")"
[ -e "$T/adhoc-beta" ] && fail "a refused ad-hoc command ran"
sub alpha -q gamma -- /bin/sh -c 'echo adhoc "$1"' sh 'a b' > "$T/adhoc.out" || fail "allowed ad-hoc command failed"
[ "$(cat "$T/adhoc.out")" = "adhoc a b" ] || fail "ad-hoc output: $(cat "$T/adhoc.out")"
sub beta gamma -- /usr/bin/touch "$T/adhoc-gamma" 2>/dev/null && fail "gamma ran an ad-hoc command for beta"
[ -e "$T/adhoc-gamma" ] && fail "ad-hoc ran for a peer not in allow_adhoc"

# timeout_s ends a job (SIGTERM: 143) and says so.
sub alpha --json beta slow > "$T/slow.json" 2> "$T/err"; rc=$?
[ $rc = 143 ] || fail "timeout gave $rc"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="timeout" and d["signal"]==15 and d["exit_status"]==143, d' "$T/slow.json" ||
  fail "timeout JSON: $(cat "$T/slow.json")"
grep -q "ended by its timeout_s" "$T/err" || fail "timeout not reported: $(cat "$T/err")"

# Ctrl-C on jsd-submit cancels the remote job.
# (exec'd directly, not through the sub function, so $! is jsd-submit)
JSD_CONFIG="$T/alpha.json" jsd-submit -q --id ctrlc-1 -p PIDFILE="$T/sleeper.pid" beta sleeper &
spid=$!
running() { sub alpha --status ctrlc-1 --json beta | grep -q '"state":"running"'; }
wait_until "the sleeper runs" running
jobpid=$(cat "$T/sleeper.pid")
kill -INT "$spid"
wait "$spid"; rc=$?
[ $rc = 130 ] || fail "interrupted jsd-submit exited $rc, not 130"
sub alpha --status ctrlc-1 --json beta > "$T/st.json" || fail "--status failed"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="cancelled", d' "$T/st.json" || fail "not cancelled: $(cat "$T/st.json")"
kill -0 "$jobpid" 2>/dev/null && fail "the cancelled job's process $jobpid still runs"
sub alpha --status nosuchid beta 2>/dev/null && fail "--status of an unknown id succeeded"

# Resubmitting an id that is still running neither runs it again nor
# disturbs the running job: it attaches to it and exits with its status
# (issue 7 item 9); --cancel ends it.
JSD_CONFIG="$T/alpha.json" jsd-submit -q --id busy-1 -p PIDFILE="$T/busy.pid" beta sleeper &
bpid=$!
busy() { sub alpha --status busy-1 --json beta | grep -q '"state":"running"'; }
wait_until "busy-1 runs" busy
JSD_CONFIG="$T/alpha.json" jsd-submit --id busy-1 -p PIDFILE="$T/busy2.pid" beta sleeper 2> "$T/err" &
dpid=$!
attached() { grep -q "attached to job busy-1 (running)" "$T/err"; }
wait_until "the duplicate attached" attached
busy || fail "the duplicate disturbed the running job"
[ -e "$T/busy2.pid" ] && fail "the duplicate ran"
sub beta -q --id busy-1 -p PIDFILE="$T/busy3.pid" beta sleeper 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -q "job id busy-1 is already taken on beta" "$T/err" || fail "another node's id: $rc $(cat "$T/err")"
sub alpha --cancel busy-1 beta > "$T/cancel.out" || fail "--cancel failed"
wait "$bpid"; rc=$?
[ $rc = 143 ] || fail "cancelled job gave $rc, not 143"
wait "$dpid"; rc=$?
[ $rc = 143 ] || fail "the attached duplicate gave $rc, not 143: $(cat "$T/err")"
grep -q "cancelled" <(sub alpha --status busy-1 beta) || fail "busy-1 not cancelled"

# The same id twice runs once.
sub alpha -q --id twice-1 -p FILE="$T/twice" beta append || fail "first submission failed"
sub alpha --id twice-1 -p FILE="$T/twice" beta append 2> "$T/err" || fail "second submission failed"
grep -q "already ran there; not run again" "$T/err" || fail "duplicate not reported: $(cat "$T/err")"
[ "$(wc -l < "$T/twice")" = 1 ] || fail "a duplicate id ran twice"

# A submission that times out while the node is down is withdrawn from the
# queue (t_notrun.sh shows it never arrives). One whose submitter could not
# withdraw it (killed) carries its deadline: it does not run when it arrives
# later, and does not use up its id: the retry runs it, once.
stop_node gamma
sub alpha -q --timeout 0.5 --id retry-0 -p FILE="$T/retry" gamma append 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -q "no answer from gamma within 0.5 s; the request was withdrawn" "$T/err" ||
  fail "timeout while down: $rc $(cat "$T/err")"
queued_for_gamma() {
  node_cmd alpha jsd-listener --status --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(l["queued"] > 0 for l in d["links"] if l["peer"] == "gamma" and l["direction"] == "out") else 1)'
}
queued_for_gamma && fail "the withdrawn submission is still queued"
# (long enough a --timeout to kill it while it waits: it would withdraw;
# each poll of queued_for_gamma starts python3, over a second when loaded)
JSD_CONFIG="$T/alpha.json" jsd-submit -q --timeout 8 --id retry-1 -p FILE="$T/retry" gamma append 2> /dev/null &
spid=$!
deadline=$(python3 -c 'import time; print(time.time() + 8.1)')
wait_until "alpha queues retry-1" queued_for_gamma
kill -KILL $spid
wait $spid
wait_until "retry-1's deadline passed" python3 -c 'import sys, time; sys.exit(time.time() < float(sys.argv[1]))' "$deadline"
start_node gamma
wait_until "gamma received the expired submission" grep -q "submission retry-1 from alpha expired before it arrived" "$T/gamma.log"
grep -q "retry-0" "$T/gamma.log" && fail "the withdrawn submission reached gamma"
[ -e "$T/retry" ] && fail "an expired submission ran"
sub alpha -q --timeout 30 --id retry-1 -p FILE="$T/retry" gamma append || fail "the retry did not run"
[ "$(wc -l < "$T/retry")" = 1 ] || fail "the retry ran $(wc -l < "$T/retry") times"

# --no-wait to a node that is down: queued durably on alpha, delivered after
# gamma starts, exactly once, also when alpha's listener restarts in between.
stop_node gamma
id=$(sub alpha --no-wait -p FILE="$T/nowait" gamma append) || fail "--no-wait failed"
[ -f "$T/alpha/state/outbox/$id.json" ] || fail "no durable outbox entry for $id"
stop_node alpha
start_node alpha
start_node gamma
wait_until "the queued job ran on gamma" grep -q "$id" "$T/nowait"
delivered() { [ ! -e "$T/alpha/state/outbox/$id.json" ]; }
wait_until "alpha's outbox entry is answered" delivered
stop_node alpha
start_node alpha
node_cmd alpha jsd-ping -c 1 -q gamma >/dev/null || fail "ping after restart"
[ "$(grep -c "$id" "$T/nowait")" = 1 ] || fail "--no-wait job ran $(grep -c "$id" "$T/nowait") times"
sub alpha --status "$id" gamma > "$T/st.out" || fail "status of the --no-wait job"
grep -q "exited, exit status 0" "$T/st.out" || fail "status: $(cat "$T/st.out")"

# 50 concurrent submissions from two nodes, each with its own exit status.
pids=()
for i in $(seq 1 50); do
  from=$([ $((i % 2)) = 0 ] && echo alpha || echo gamma)
  sub $from -q -p CODE=$((i % 7)) beta exit &
  pids+=($!)
done
bad=0
for i in $(seq 1 50); do
  wait "${pids[$((i - 1))]}"; rc=$?
  [ $rc = $((i % 7)) ] || { echo "submission $i: exit $rc, wanted $((i % 7))"; bad=$((bad + 1)); }
done
[ $bad = 0 ] || fail "$bad of 50 concurrent submissions came back wrong"
pass
