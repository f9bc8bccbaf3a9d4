# A cold pair: the first ping is answered and brings up both directions,
# with all four seed-named processes; three nodes; --status; jsd-ping errors.
source "$JSD_TEST_LIB"
gen_key "$T/cluster.key"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","gamma":"127.0.0.4:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455"}'
make_node gamma 127.0.0.4 - '{"alpha":"127.0.0.2:4455","beta":"127.0.0.3:4455"}'
start_node alpha
start_node beta
start_node gamma

# The seed's defect: the first event on a cold link was lost. Here it is answered.
out=$(node_cmd alpha jsd-ping -c 1 -W 10 beta) || fail "first ping alpha -> beta failed: $out"
echo "$out" | grep -q "^reply from beta: seq=1 " || fail "no reply line for seq 1: $out"
echo "$out" | grep -q "1 calls sent, 1 replies received, 0% lost" || fail "bad summary: $out"

# The reply came back over beta -> alpha, so both directions are up now.
for pair in "alpha beta out" "alpha beta in" "beta alpha out" "beta alpha in"; do
  set -- $pair
  [ "$(link_state "$1" "$2" "$3")" = up ] || fail "link $pair is not up: $(link_state "$1" "$2" "$3")"
done
for p in QueueClient_beta QueueServer_alpha QueueClient_alpha QueueServer_beta; do
  [ "$(procs "$p" | grep -c "$T")" = 1 ] || fail "expected one $p process: $(procs "$p")"
done

# Warm pings, a third node, the node itself, host:port.
node_cmd alpha jsd-ping -c 5 -i 0.01 -q beta >/dev/null || fail "warm pings failed"
node_cmd gamma jsd-ping -c 2 -i 0.01 -q beta >/dev/null || fail "gamma -> beta failed"
node_cmd beta jsd-ping -c 2 -i 0.01 -q alpha >/dev/null || fail "beta -> alpha failed"
node_cmd alpha jsd-ping -c 1 -q alpha >/dev/null || fail "ping to the node itself failed"
node_cmd alpha jsd-ping -c 1 -q 127.0.0.4:4455 >/dev/null || fail "ping by address failed"
node_cmd alpha jsd-ping -c 1 -q beta status >/dev/null || fail "the status object did not answer"

# --json is one parseable object.
node_cmd alpha jsd-ping --json -c 3 -i 0.01 beta > "$T/ping.json" || fail "jsd-ping --json failed"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["sent"]==3 and d["received"]==3 and d["rtt_ms"]["min"]>0, d' "$T/ping.json" ||
  fail "bad JSON: $(cat "$T/ping.json")"
# Times to the microsecond: 3.496, never 3.4962060000000004.
grep -qE '[0-9]\.[0-9]{4,}' "$T/ping.json" && fail "times beyond microseconds: $(cat "$T/ping.json")"
# The help names each default once (the help wraps lines: one line here).
help=$(jsd-ping --help | tr -s ' \n' '  ')
[[ $help == *"(default: until interrupted)"* ]] || fail "jsd-ping --help: no default for -c: $help"
[[ $help == *"(default: until interrupted) (default"* ]] && fail "jsd-ping --help: a default twice: $help"

# Errors are one line on stderr and exit 255.
node_cmd alpha jsd-ping -c 1 nosuchnode 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "unknown node gave exit $rc"
grep -q "^jsd-ping: error: unknown node 'nosuchnode'" "$T/err" || fail "unclear error: $(cat "$T/err")"
node_cmd alpha jsd-ping -c 1 beta nosuchobject 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "unknown object gave exit $rc"
grep -q "no object 'nosuchobject' on node beta" "$T/err" || fail "unclear error: $(cat "$T/err")"
JSD_CONFIG=/dev/null jsd-ping -c 1 beta 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "bad config gave exit $rc"
stop_node gamma
node_cmd gamma jsd-ping -c 1 beta 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "no listener gave exit $rc"
grep -q "^jsd-ping: error: no jsd-listener running for node gamma" "$T/err" || fail "unclear error: $(cat "$T/err")"
[ "$(wc -l < "$T/err")" = 1 ] || fail "more than one error line: $(cat "$T/err")"
# A node that is down: the call waits in the queue, -W bounds it, exit 1.
node_cmd alpha jsd-ping -c 1 -W 0.5 gamma > "$T/out" 2>/dev/null; rc=$?
[ $rc = 1 ] || fail "no reply should exit 1, got $rc: $(cat "$T/out")"
grep -q "1 calls sent, 0 replies received, 100% lost" "$T/out" || fail "bad summary: $(cat "$T/out")"
pass
