# Issue 20 (B13): an idle link is watched by the kernel, not by probes that
# wake the link processes. Both ends of every link socket have TCP
# keepalive (ss shows its timer on the QueueClient's and the QueueServer's
# sockets), and a partition of an idle link (two namespaces joined by a
# veth pair, root only: no RST, no FIN) is found by the kernel within
# idle_heartbeat_ms + dead_after_ms on both sides, not by a jsd probe.
# Then the link comes back when the network heals, and a link process
# stopped on an idle link is replaced at the link's next use.
source "$JSD_TEST_LIB"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "needs ip(8) from iproute2"
command -v ss >/dev/null || skip "needs ss(8) from iproute2"
A=jsdt-ka-$$ B=jsdt-kb-$$ NET=10.232.$(( $$ % 200 + 20 ))
ip netns add "$A" 2>/dev/null || skip "cannot create network namespaces here"
CLEANUP_HOOKS+=("ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null")
ip netns add "$B" || fail "ip netns add"
ip link add "ka$$" type veth peer name "kb$$" || skip "no veth support"
ip link set "ka$$" netns "$A" && ip link set "kb$$" netns "$B" || fail "moving veth ends"
ip -n "$A" addr add "$NET.1/24" dev "ka$$" && ip -n "$B" addr add "$NET.2/24" dev "kb$$" || fail "addresses"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up || fail "lo up"; done
ip -n "$A" link set "ka$$" up && ip -n "$B" link set "kb$$" up || fail "veth up"

# Whole seconds (the kernel's keepalive unit): idle links are the kernel's.
X='"idle_heartbeat_ms": 2000, "dead_after_ms": 1000'
gen_key "$T/cluster.key"
make_node alpha "$NET.1" - "{\"beta\":\"$NET.2:4455\"}" "$X"
make_node beta "$NET.2" - "{\"alpha\":\"$NET.1:4455\"}" "$X"
NODE_NETNS[alpha]=$A
NODE_NETNS[beta]=$B
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -W 10 -q beta >/dev/null || fail "ping across the veth failed"
both_up() { [ "$(link_state alpha beta out)" = up ] && [ "$(link_state alpha beta in)" = up ]; }
wait_until "both of alpha's links to beta are up" both_up

# Every link socket of alpha's two link processes (ss names them by pid).
# alpha's link processes: children of the listener this test started.
cl=$(child_named "${NODE_PID[alpha]}" QueueClient_beta) && qs=$(child_named "${NODE_PID[alpha]}" QueueServer_beta) &&
  [ -n "$cl" ] && [ -n "$qs" ] || fail "alpha's link processes not found"
ss -tnopH -N "$A" state established > "$T/ss.out" || fail "ss failed"
for p in "$cl" "$qs"; do
  grep -q "pid=$p," "$T/ss.out" || fail "no socket of pid $p: $(cat "$T/ss.out")"
  grep "pid=$p," "$T/ss.out" | grep -vq "timer:(keepalive" && fail "a socket of pid $p without keepalive: $(cat "$T/ss.out")"
done

# Idle and silent past what the listener's watch allowed an idle link
# process before (twice idle_heartbeat_ms + dead_after_ms = 6 s, looked at
# every 2 s): no probe, no "alive" line, and no process replaced. The sleep
# is the span under test, not a wait for something to happen.
sleep 9
grep -q "has not answered for" "$T/alpha.log" "$T/beta.log" && fail "an idle link process was replaced"
[ "$(child_named "${NODE_PID[alpha]}" QueueClient_beta)" = "$cl" ] || fail "alpha's client changed while idle"
[ "$(child_named "${NODE_PID[alpha]}" QueueServer_beta)" = "$qs" ] || fail "alpha's queue-server changed while idle"
link_is_up alpha beta out || fail "the idle link went down"

# Partition while idle: beta's end of the cable goes down (alpha's packets
# vanish; beta has no route back).
ip -n "$B" link set "kb$$" down || fail "link down"
cut=$(date +%s%N)
down() { [ "$(link_state alpha beta out)" != up ]; }
wait_until "the kernel ends alpha's idle link to beta" down
ms=$(( ($(date +%s%N) - cut) / 1000000 ))
# idle_heartbeat_ms + dead_after_ms = 3000 from the last frame; room for a
# loaded machine, but far from the kernel's default (2 hours).
echo "t_keepalive: the idle link was found dead $ms ms after the cut"
[ "$ms" -le 10000 ] || fail "the dead idle link was found after $ms ms"
grep -q "QueueClient_beta.*no answer from beta" "$T/alpha.log" && fail "found by a jsd probe, not by the kernel"
grep -q "QueueClient_beta.*link to beta is down: " "$T/alpha.log" || fail "no line about the link going down"
qs_gone() { grep -q "QueueServer_alpha.*link from alpha closed: " "$T/beta.log"; }
wait_until "beta's queue-server's link ends too" qs_gone
grep -q "QueueServer_alpha.*no heartbeat for" "$T/beta.log" && fail "beta's side found it by its own timer"

# Heal: the link comes back and carries calls.
ip -n "$B" link set "kb$$" up || fail "link up"
node_cmd alpha jsd-ping -c 1 -W 20 -q beta >/dev/null || fail "ping after the partition healed failed"

# A link process stopped while its link is idle is not seen by the kernel
# (its host answers): it is found when the link is next used, within the
# limits of a busy link (twice dead_after_ms), and the call goes through.
client=$(child_named "${NODE_PID[alpha]}" QueueClient_beta)
[ -n "$client" ] || fail "no client to beta"
CLEANUP_HOOKS+=("kill -CONT $client 2>/dev/null")
kill -STOP "$client"
node_cmd alpha jsd-ping -c 1 -W 20 -q beta >/dev/null || fail "ping through a stopped idle client failed"
grep -q "QueueClient_beta (pid $client) has not answered for [0-9]* ms: replacing it" "$T/alpha.log" ||
  fail "the stopped idle client was not replaced"
pass
