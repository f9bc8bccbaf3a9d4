# Hostile input, second round (issue 24). JSON nested 300,000 deep, sent
# directly and durably, by a local tool and through a peer, and read back
# from the outbox at start-up: refused or answered, never a crash (it was a
# SIGSEGV in dump()'s recursion, and a crash loop from the outbox).
source "$JSD_TEST_LIB"
RAW="python3 $(dirname "$0")/raw_send.py"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}'
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta failed"
ASOCK=$T/alpha/state/control.sock
BSOCK=$T/beta/state/control.sock
alive() { kill -0 "${NODE_PID[$1]}" 2>/dev/null || fail "$1's listener died"; }

# 1. A local tool, durably, to the node itself and to a peer: refused at
# the door, with why; nothing is queued.
for to in alpha beta; do
  out=$($RAW "$ASOCK" 1 $to ping 300000 '{"id":"deep1","error":' '}') || fail "durable to $to: $out"
  [ "$out" = "error a durable event's body is nested deeper than 32 levels" ] || fail "durable to $to: $out"
done
[ -z "$(ls "$T/alpha/state/outbox/"*.json 2>/dev/null)" ] || fail "a nested event was queued"
alive alpha

# 2. Directly: the ping object echoes (nobody parses it), the job object
# refuses it as malformed; by a local tool and from a peer (beta's tool
# calls alpha, so alpha reads what came over the link).
out=$($RAW "$ASOCK" 0 alpha ping 300000 '{"error":' '}') || fail "direct ping: $out"
[[ $out == 'reply {"error":[[[['* ]] || fail "direct ping: $out"
for sock in "$ASOCK" "$BSOCK"; do
  out=$($RAW "$sock" 0 alpha job 300000 '{"op":"submit","id":"deep2","argv":' '}') || fail "direct job: $out"
  [[ $out == 'reply {"error":"malformed job request"'* ]] || fail "direct job via $sock: $out"
  out=$($RAW "$sock" 0 alpha job 100000 '{"op":"status","id":"deep2","x":' '}') || fail "direct status: $out"
  [[ $out == 'reply {"error":"malformed job request"'* ]] || fail "direct status via $sock: $out"
done
out=$($RAW "$BSOCK" 0 alpha ping 300000 '{"error":' '}') || fail "ping from beta: $out"
[[ $out == 'reply {"error":[[[['* ]] || fail "ping from beta: $out"
alive alpha
alive beta

# 3. Durably, from the outbox at start-up (what an older node, or a crash
# mid-way, could leave there): one entry to the node itself, one to beta,
# whose ping object echoes the nested "error" back over the link. Each is
# answered, leaves the outbox with a warning, and the node stays up (it
# died during start-up before).
stop_node alpha
python3 - "$T/alpha/state/outbox" <<'EOP'
import json, sys
deep = '{"id":"%s","error":' + "[" * 300000 + "]" * 300000 + "}"
for id, to in (("deep3", "alpha"), ("deep4", "beta")):
    with open(f"{sys.argv[1]}/{id}.json", "w") as f:
        json.dump({"id": id, "to": to, "object": "ping", "body": deep % id}, f)
EOP
start_node alpha
gone() { [ ! -e "$T/alpha/state/outbox/$1.json" ]; }
wait_until "deep3 leaves the outbox" gone deep3
wait_until "deep4 leaves the outbox" gone deep4
grep -q "durable submission deep4 to beta: its answer is malformed (nested deeper than 32 levels)" "$T/alpha.log" ||
  fail "no warning for deep4"
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta after the nested answers"
# A restart finds nothing left to deliver.
stop_node alpha
start_node alpha
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta after a restart"
alive beta
pass
