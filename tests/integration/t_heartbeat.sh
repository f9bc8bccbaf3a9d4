# Heartbeats: a peer that goes silent with its TCP connection still open (a
# half-open link; here its queue-server is stopped with SIGSTOP) is detected
# within dead_after_ms, the link is re-established, the waiting call is
# answered, and the silent queue-server is replaced (no process left).
source "$JSD_TEST_LIB"
gen_key "$T/cluster.key"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}'
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "first ping failed"

silent=$(pgrep -f "^QueueServer_alpha --config $T/beta.json")
[ -n "$silent" ] || fail "no QueueServer_alpha on beta"
kill -STOP "$silent"
# The call goes out on the silent link and waits; alpha's client notices the
# silence (dead_after_ms 1000 here), reconnects, and sends it again.
out=$(node_cmd alpha jsd-ping -c 1 -W 30 beta 2>&1) || fail "call over a half-open link was not answered: $out"
grep -q "QueueClient_beta.*no answer from beta for [0-9]* ms" "$T/alpha.log" || fail "the dead link was not detected by heartbeat"
gone() { ! kill -0 "$silent" 2>/dev/null; }
wait_until "the silent queue-server is replaced and gone" gone
[ "$(pgrep -f "^QueueServer_alpha --config $T/beta.json" | wc -l)" = 1 ] || fail "expected exactly one QueueServer_alpha"
pass
