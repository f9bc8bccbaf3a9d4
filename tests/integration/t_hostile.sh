# Hostile input, second round (issue 24). JSON nested 300,000 deep, sent
# directly and durably, by a local tool and through a peer, and read back
# from the outbox at start-up: refused or answered, never a crash (it was a
# SIGSEGV in dump()'s recursion, and a crash loop from the outbox). Then
# the smaller ones: oversized fields, NUL bytes in argv, times out of range,
# refusals that flooded the audit log, two live holders of one key.
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

# 4. Oversized fields: refused, and quoted cut with their length.
big=$(printf '%*s' 100000 '' | tr ' ' x)
out=$($RAW "$ASOCK" 0 beta job 0 '{"op":"submit","id":"big1","job":"'"$big"'"}' '') || fail "big job name: $out"
[[ $out == 'reply {"error":"malformed job request: invalid job name '"'"'xxxx'*'... (100000 bytes)'"'"'"'* ]] ||
  fail "big job name: $out"
awk 'length > 2000 { exit 1 }' "$T/alpha.log" "$T/beta.log" "$T/beta/state/audit.log" ||
  fail "a log or audit line of more than 2000 bytes"

# 5. NUL bytes in argv: refused (the command would have run cut at the NUL
# while its record and audit line showed the whole argv).
out=$($RAW "$ASOCK" 0 beta job 0 '{"op":"submit","id":"nul1","argv":["/bin/echo","a\u0000b"]}' '') || fail "NUL: $out"
[[ $out == 'reply {"error":"argv must be an array of strings without NUL bytes"'* ]] || fail "NUL in argv: $out"

# 6. Times out of range: refused before any arithmetic (1e20 gave 254 at
# once while the job ran, 1e308 255).
for t in 1e20 1e308 inf nan 0 -1; do
  node_cmd alpha jsd-submit --timeout "$t" beta -- /bin/true > /dev/null 2> "$T/err"; rc=$?
  [ $rc = 255 ] || fail "--timeout $t: expected 255, got $rc"
  # (cxxopts itself refuses inf and nan: a usage line too)
  case $t in inf | nan) want="jsd-submit: error: .* (see --help)" ;;
  *) want="jsd-submit: error: --timeout wants a number of seconds > 0 and at most 100000000 (see --help)" ;;
  esac
  grep -qx "$want" "$T/err" || fail "--timeout $t: $(cat "$T/err")"
  node_cmd alpha jsd-ping -W "$t" -c 1 beta > /dev/null 2> "$T/err"; rc=$?
  [ $rc = 255 ] || fail "jsd-ping -W $t: expected 255, got $rc"
done
node_cmd alpha jsd-ping -i 1e20 -c 1 beta > /dev/null 2>&1 && fail "jsd-ping -i 1e20 accepted"

# 7. Refused handshakes: one audit line per address and reason per minute,
# in audit-refused.log (a flood of them pushed decisions out of audit.log).
gen_key "$T/other.key"
make_node imp 127.0.0.6 "$T/other.key" '{"beta":"127.0.0.3:4455"}'
sed -i 's/"node": "imp"/"node": "alpha"/' "$T/imp.json"
start_node imp
for i in 1 2 3 4 5; do node_cmd imp jsd-ping -c 1 -W 5 beta > /dev/null 2>&1 && fail "the impostor was let in"; done
refusals() { grep -c '"address":"127.0.0.6:' "$T/beta/state/audit-refused.log"; }
[ "$(refusals)" = 1 ] || fail "expected one audit line for the impostor, got: $(cat "$T/beta/state/audit-refused.log")"
grep -q '"verdict":"refused".*"what":"link"' "$T/beta/state/audit.log" && fail "a refused link in audit.log"
stop_node imp

# 8. Two live holders of alpha's key: beta warns, naming both addresses;
# alpha sees its link go down (not "beta is stopping").
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta before the thief"
make_node thief 127.0.0.5 "$T/keys/alpha.key" '{"beta":"127.0.0.3:4455"}'
sed -i 's/"node": "thief"/"node": "alpha"/' "$T/thief.json"
start_node thief
node_cmd thief jsd-ping -c 1 -W 2 -q beta > /dev/null 2>&1  # its answer goes to the real alpha
wait_until "beta warns of two holders of alpha's key" grep -q \
  "two live holders of alpha's key: a link from 127.0.0.5:[0-9]* replaces the live one from 127.0.0.2:[0-9]*" "$T/beta.log"
stop_node thief
grep -q "beta is stopping" "$T/alpha.log" && fail "alpha took the displacement for beta stopping"
node_cmd alpha jsd-ping -c 1 -W 20 -q beta >/dev/null || fail "alpha -> beta after the thief"

# The impostor's refusals counted: written when beta stops.
stop_node beta
grep -q '"address":"127.0.0.6:[0-9]*".*"repeated":[1-9]' "$T/beta/state/audit-refused.log" ||
  fail "no count of the impostor's refusals: $(cat "$T/beta/state/audit-refused.log")"
pass
