# A real network partition between two hosts (network namespaces joined by
# a veth pair, root only): no RST, no FIN, just silence. Heartbeats find the
# dead link on both sides, calls made meanwhile wait in the queue, and all
# of them are answered, in order, once the network heals.
source "$JSD_TEST_LIB"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "needs ip(8) from iproute2"
A=jsdt-a-$$ B=jsdt-b-$$ NET=10.231.$(( $$ % 200 + 20 ))
ip netns add "$A" 2>/dev/null || skip "cannot create network namespaces here"
CLEANUP_HOOKS+=("ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null")
ip netns add "$B" || fail "ip netns add"
ip link add "va$$" type veth peer name "vb$$" || skip "no veth support"
ip link set "va$$" netns "$A" && ip link set "vb$$" netns "$B" || fail "moving veth ends"
ip -n "$A" addr add "$NET.1/24" dev "va$$" && ip -n "$B" addr add "$NET.2/24" dev "vb$$" || fail "addresses"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up || fail "lo up"; done
ip -n "$A" link set "va$$" up && ip -n "$B" link set "vb$$" up || fail "veth up"

gen_key "$T/cluster.key"
make_node alpha "$NET.1" - "{\"beta\":\"$NET.2:4455\"}"
make_node beta "$NET.2" - "{\"alpha\":\"$NET.1:4455\"}"
NODE_NETNS[alpha]=$A
NODE_NETNS[beta]=$B
start_node alpha
start_node beta
# The tools reach their node through its control socket: a file, so they
# need not be in its namespace.
node_cmd alpha jsd-ping -c 1 -W 10 -q beta >/dev/null || fail "ping across the veth failed"

# Partition: the cable is cut (the link goes down on alpha's side).
ip -n "$A" link set "va$$" down || fail "link down"
down() { [ "$(link_state alpha beta out)" != up ]; }
wait_until "alpha's heartbeats notice the partition" down
grep -q "QueueClient_beta.*no answer from beta for [0-9]* ms" "$T/alpha.log" || fail "not detected by heartbeat"
node_cmd alpha jsd-ping -c 5 -i 0.02 -W 60 beta > "$T/queued.out" 2>/dev/null &
ping_pid=$!
queued() { node_cmd alpha jsd-listener --status --json | python3 -c '
import json,sys
d=json.load(sys.stdin)
sys.exit(0 if any(l["queued"]>=5 for l in d["links"] if l["direction"]=="out" and l["peer"]=="beta") else 1)'; }
wait_until "5 calls wait in alpha's queue" queued
# beta's side: its queue-server for alpha hears nothing and gives up too.
qs_gone() { grep -q "QueueServer_alpha.*no heartbeat for" "$T/beta.log"; }
wait_until "beta's queue-server notices the partition" qs_gone

# Heal: every call is answered, in order.
ip -n "$A" link set "va$$" up || fail "link up"
wait "$ping_pid" || fail "calls made during the partition were not answered: $(cat "$T/queued.out")"
seqs=$(sed -n 's/^reply from beta: seq=\([0-9]*\) .*/\1/p' "$T/queued.out" | tr '\n' ' ')
[ "$seqs" = "1 2 3 4 5 " ] || fail "answers lost or out of order: '$seqs'"
pass
