# A stopped (SIGSTOP) link process is noticed by its own listener, not only
# by the far side: the listener hears nothing on the pipe for twice dead_after_ms,
# kills it and starts a new one from its queue, so a job submitted while it
# was stopped runs exactly once. And a tool whose own listener is stopped
# says so (exit 255), instead of blaming the remote node (exit 1).
source "$JSD_TEST_LIB"
JOBS='"jobs": { "append": { "command": ["/bin/sh", "-c", "echo \"$JSD_JOB_ID\" >> \"$JSD_PARAM_FILE\""] } }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "first ping failed"

client=$(pgrep -f "^QueueClient_beta --config $T/alpha.json")
[ -n "$client" ] || fail "no QueueClient_beta on alpha"
CLEANUP_HOOKS+=("kill -CONT $client 2>/dev/null")
kill -STOP "$client"
node_cmd alpha jsd-submit -q -p FILE="$T/ran" beta append > "$T/submit.out" 2>&1 &
sub=$!
replaced() { grep -q "QueueClient_beta (pid $client) has not answered for [0-9]* ms: replacing it" "$T/alpha.log"; }
wait_until "alpha replaces its stopped client" replaced
wait "$sub" || fail "the job submitted while the client was stopped failed: $(cat "$T/submit.out")"
[ "$(wc -l < "$T/ran")" = 1 ] || fail "the job ran $(wc -l < "$T/ran") times"
gone() { ! kill -0 "$client" 2>/dev/null; }
wait_until "the stopped client is gone" gone
now=$(pgrep -f "^QueueClient_beta --config $T/alpha.json")
[ -n "$now" ] && [ "$now" != "$client" ] || fail "no new QueueClient_beta (had $client, now '$now')"

# alpha's listener itself stopped: its control socket still takes the
# connection and the call, but nobody answers.
kill -STOP "${NODE_PID[alpha]}"
CLEANUP_HOOKS+=("kill -CONT ${NODE_PID[alpha]} 2>/dev/null")
node_cmd alpha jsd-ping -c 1 -W 1.5 beta > "$T/ping.out" 2> "$T/ping.err"
rc=$?
kill -CONT "${NODE_PID[alpha]}"
[ $rc = 255 ] || fail "jsd-ping against a stopped listener exited $rc, not 255: $(cat "$T/ping.out" "$T/ping.err")"
grep -q "^jsd-ping: error: the local jsd-listener did not answer for [0-9]* ms$" "$T/ping.err" ||
  fail "no clear error: $(cat "$T/ping.err")"
# Running again, it answers and the remote does too.
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "ping after SIGCONT failed"
pass
