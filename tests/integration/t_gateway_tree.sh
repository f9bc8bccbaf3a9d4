# Gateways, more than one level and many nodes (issue 20 item 2):
# - two levels: alpha -> beta -> delta -> epsilon (alpha names only beta,
#   beta names delta, delta links to epsilon): ping, a job, --no-wait;
# - a fan-out mixing a direct node (beta), one gatewayed node (gamma) and a
#   two-level one (epsilon): the same prefixed output and exit status, and
#   the two requests through beta sent as one bundle;
# - the gateway killed (SIGKILL) mid-fan-out and started again: the jobs
#   behind it run once, never twice, and the submitter gets their ends.
source "$JSD_TEST_LIB"
JOBS='"jobs": {
    "hello": {"command": ["/bin/sh", "-c", "echo \"hello from $JSD_NODE\"; exit 3"]},
    "ledger": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/ledger-$JSD_NODE-$JSD_JOB_ID; echo ran"]},
    "slow": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/slow-$JSD_NODE-$JSD_JOB_ID; echo started; while [ ! -e '"$T"'/go ]; do sleep 0.05; done; echo done"]}
  }'
for n in alpha beta gamma delta epsilon; do node_key $n > /dev/null; done
pub() { pub_key "$T/keys/$1.key"; }
via() { echo '{"via":"'"$1"'","public_key":"'"$(pub "$2")"'"}'; }
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","gamma":'"$(via beta gamma)"',"epsilon":'"$(via beta epsilon)"'}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455","delta":"127.0.0.5:4455","epsilon":'"$(via delta epsilon)"'}' "\"gateway\": true, $JOBS"
make_node gamma 127.0.0.4 - '{"beta":"127.0.0.3:4455","alpha":'"$(via beta alpha)"'}' "$JOBS"
make_node delta 127.0.0.5 - '{"beta":"127.0.0.3:4455","epsilon":"127.0.0.6:4455"}' '"gateway": true'
make_node epsilon 127.0.0.6 - '{"delta":"127.0.0.5:4455","alpha":'"$(via delta alpha)"'}' "$JOBS"
for n in alpha beta gamma delta epsilon; do start_node $n; done
count() { cat "$T"/$1 2>/dev/null | wc -l; }
ran_once() { [ "$(count "$1")" = 1 ]; }
all_started() { [ "$(grep -c ': started$' "$T/k.out")" = 3 ]; }

# 1. Two levels.
node_cmd alpha jsd-ping -c 1 epsilon > "$T/ping.out" 2>&1 || fail "ping epsilon: $(cat "$T/ping.out")"
grep -q "^reply from epsilon: seq=1" "$T/ping.out" || fail "ping epsilon: $(cat "$T/ping.out")"
node_cmd alpha jsd-submit epsilon hello > "$T/e.out" 2> "$T/e.err"; rc=$?
[ $rc = 3 ] || fail "hello on epsilon exited $rc: $(cat "$T/e.err")"
[ "$(cat "$T/e.out")" = "hello from epsilon" ] || fail "epsilon's output: $(cat "$T/e.out")"
grep '"what":"job"' "$T/epsilon/state/audit.log" | grep '"peer":"alpha"' | grep -q '"via":\["beta","delta"\]' ||
  fail "epsilon's audit log does not name both gateways: $(cat "$T/epsilon/state/audit.log")"
node_cmd alpha jsd-submit --no-wait --id nw2 epsilon ledger > /dev/null 2> "$T/nw.err" || fail "--no-wait: $(cat "$T/nw.err")"
wait_until "nw2 ran on epsilon" ran_once ledger-epsilon-nw2
wait_until "nw2 leaves alpha's outbox" test ! -e "$T/alpha/state/outbox/nw2.json"

# 2. A fan-out mixing direct, gatewayed and two-level nodes.
node_cmd alpha jsd-submit beta,gamma,epsilon hello > "$T/f.out" 2> "$T/f.err"; rc=$?
[ $rc = 3 ] || fail "fan-out exited $rc: $(cat "$T/f.err")"
[ "$(sort "$T/f.out")" = "$(printf 'beta: hello from beta\nepsilon: hello from epsilon\ngamma: hello from gamma')" ] ||
  fail "fan-out output: $(cat "$T/f.out")"
# gamma's and epsilon's requests went to beta as one bundle (the fan-out's
# window is written at once, and the listener gathers a turn's requests).
node_cmd alpha jsd-listener --metrics > "$T/alpha.prom" || fail "alpha: --metrics failed"
grep -q '^jsd_relay_bundles_sent_total 1$' "$T/alpha.prom" &&
  grep -q '^jsd_relayed_requests_bundled_total 2$' "$T/alpha.prom" ||
  fail "the fan-out did not go through beta as one bundle: $(grep relay "$T/alpha.prom")"
node_cmd alpha jsd-submit -q @all hello > "$T/all.out" 2>/dev/null
[ "$(cut -d: -f1 "$T/all.out" | sort | tr '\n' ' ')" = "beta epsilon gamma " ] || fail "@all: $(cat "$T/all.out")"

# 3. beta killed mid-fan-out (its jobs and the ones behind it run), then
# started again: every node's job ran once, and the submitter gets every end.
node_cmd alpha jsd-submit --id k1 beta,gamma,epsilon slow > "$T/k.out" 2> "$T/k.err" &
sub=$!
wait_until "the jobs run" all_started
kill -KILL "${NODE_PID[beta]}"
wait "${NODE_PID[beta]}" 2>/dev/null
unset "NODE_PID[beta]"
touch "$T/go"
start_node beta
wait $sub; rc=$?
[ $rc = 0 ] || fail "the fan-out through a killed gateway exited $rc: $(cat "$T/k.err")"
for n in beta gamma epsilon; do
  [ "$(count "slow-$n-k1.$n")" = 1 ] || fail "k1.$n ran $(count "slow-$n-k1.$n") times on $n"
done
# Every end is known: from the relayed output, or (an end that happened
# while beta was down, as over a direct link) from the node's record.
grep -qx "jsd-submit: 3 nodes: 3 ok, 0 failed" "$T/k.err" || fail "the fan-out's summary: $(cat "$T/k.err")"
pass
