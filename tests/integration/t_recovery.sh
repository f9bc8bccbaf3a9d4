# Broken links come back: kill -9 of a queue-server, then of a client; a
# node that is down receives the calls queued for it, in order, once it is
# back; a reconnecting peer replaces its old queue-server (no leaks).
source "$JSD_TEST_LIB"
gen_key "$T/cluster.key"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}'
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "first ping failed"

qs_pid() { pgrep -f "^QueueServer_$1 --config $T/$2.json" ; }
qc_pid() { pgrep -f "^QueueClient_$1 --config $T/$2.json" ; }

# 1. kill -9 the queue-server on beta that serves alpha's link.
old=$(qs_pid alpha beta)
[ -n "$old" ] || fail "no QueueServer_alpha on beta"
kill -9 "$old"
out=$(node_cmd alpha jsd-ping -c 3 -i 0.05 -W 20 beta) || fail "no reply after killing QueueServer_alpha: $out"
echo "$out" | grep -q "3 replies received" || fail "lost replies after killing QueueServer_alpha: $out"
wait_until "beta's QueueServer_alpha is back" link_is_up beta alpha in
new=$(qs_pid alpha beta)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "QueueServer_alpha was not replaced ($old -> $new)"
[ "$(qs_pid alpha beta | wc -l)" = 1 ] || fail "more than one QueueServer_alpha: $(qs_pid alpha beta)"

# 2. kill -9 the client on alpha: the listener restarts it and nothing is lost.
old=$(qc_pid beta alpha)
[ -n "$old" ] || fail "no QueueClient_beta on alpha"
kill -9 "$old"
out=$(node_cmd alpha jsd-ping -c 3 -i 0.05 -W 20 beta) || fail "no reply after killing QueueClient_beta: $out"
echo "$out" | grep -q "3 replies received" || fail "lost replies after killing QueueClient_beta: $out"
new=$(qc_pid beta alpha)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "QueueClient_beta was not restarted ($old -> $new)"
node_cmd alpha jsd-listener --status --json | python3 -c '
import json,sys
d=json.load(sys.stdin)
out=[l for l in d["links"] if l["direction"]=="out" and l["peer"]=="beta"][0]
assert out["restarts"]==1, out' || fail "restart not counted in status"

# 3. beta is down while calls are made: they wait in alpha's queue and are
# answered, all of them and in order, when beta is back.
stop_node beta
node_cmd alpha jsd-ping -c 5 -i 0.02 -W 30 beta > "$T/queued.out" 2>"$T/queued.err" &
ping_pid=$!
# The calls are queued once alpha's status counts them.
queued() { node_cmd alpha jsd-listener --status --json | python3 -c '
import json,sys
d=json.load(sys.stdin)
sys.exit(0 if any(l["queued"]>=5 for l in d["links"] if l["direction"]=="out" and l["peer"]=="beta") else 1)'; }
wait_until "alpha holds 5 queued calls for beta" queued
start_node beta
wait "$ping_pid" || fail "queued calls were not answered: $(cat "$T/queued.out" "$T/queued.err")"
seqs=$(sed -n 's/^reply from beta: seq=\([0-9]*\) .*/\1/p' "$T/queued.out" | tr '\n' ' ')
[ "$seqs" = "1 2 3 4 5 " ] || fail "queued calls answered out of order or lost: '$seqs'"

# 4. No leaks: one queue-server and one client per direction, and the
# queue-servers' ports are closed once their link is up.
for spec in "QueueServer_alpha beta" "QueueServer_beta alpha" "QueueClient_alpha beta" "QueueClient_beta alpha"; do
  set -- $spec
  n=$(pgrep -f "^$1 --config $T/$2.json" | wc -l)
  [ "$n" = 1 ] || fail "expected one $1 on $2, found $n"
done
for node in alpha beta; do
  for port in $(node_cmd $node jsd-listener --status --json | python3 -c 'import json,sys; print(" ".join(str(l["port"]) for l in json.load(sys.stdin)["links"] if l["direction"]=="in"))'); do
    ss -ltn "sport = :$port" | grep -q LISTEN && fail "queue-server port $port on $node still listening after its link came up"
  done
done
pass
