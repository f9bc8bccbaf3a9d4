# Clients nobody needs do not live forever (idle_client_s, 1 s here): after
# a ping to a host that is down gave up, its call leaves the queue and the
# client ends; a call that waits longer than idle_client_s for a link that
# never comes up is answered with an error; a client in use stays, and one
# that ended comes back when something is sent again.
source "$JSD_TEST_LIB"
JOBS='"jobs": { "hello": { "command": ["/bin/echo", "hello"] } }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' '"idle_client_s": 1'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
start_node alpha
start_node beta
down=127.0.10.5:4455
client_of() { pgrep -f "^QueueClient_$1 --config $T/alpha.json"; }
ended() { grep -q "QueueClient_$1 ended: nothing queued for 1 s (idle_client_s)" "$T/alpha.log"; }

# A ping to a host that is down: no reply (1), then the client goes.
node_cmd alpha jsd-ping -c 1 -W 0.5 -q $down > "$T/ping.out" 2>&1
rc=$?
[ $rc = 1 ] || fail "ping to a down host exited $rc, not 1: $(cat "$T/ping.out")"
wait_until "the client to $down ends" ended $down
gone() { [ -z "$(client_of $down)" ]; }
wait_until "the client to $down is gone" gone

# A submission to it waits idle_client_s, then gets a clear error (255).
node_cmd alpha jsd-submit -q $down hello > "$T/sub.out" 2> "$T/sub.err"
rc=$?
[ $rc = 255 ] || fail "submission to a down host exited $rc, not 255: $(cat "$T/sub.out" "$T/sub.err")"
grep -q "^jsd-submit: error: cannot reach $down: .*; gave up after 1 s (idle_client_s): the call was not sent" "$T/sub.err" ||
  fail "no clear error: $(cat "$T/sub.err")"
wait_until "the client to $down ends again" gone

# A peer that is up: its client ends when idle and comes back when needed,
# with the same exactly-once numbering (the job runs and answers).
out=$(node_cmd alpha jsd-submit -q beta hello) || fail "first job failed"
[ "$out" = hello ] || fail "first job said $out"
first=$(client_of beta)
[ -n "$first" ] || fail "no client to beta"
beta_ended() { ended beta && [ -z "$(client_of beta)" ]; }
wait_until "the idle client to beta ends" beta_ended
out=$(node_cmd alpha jsd-submit -q beta hello) || fail "job after the client ended failed"
[ "$out" = hello ] || fail "second job said $out"
pass
