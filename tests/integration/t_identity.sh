# Node identities: an impostor with its own key claiming alpha's name is
# refused, runs nothing and leaves alpha's link alone; a node certified by
# a trusted CA is accepted without being in peers (and linked back to);
# an untrusted CA, a revoked key and a missing psk are refused; per-job
# allow lists by name and @group (config and certificate groups); every
# decision is in audit.log.
source "$JSD_TEST_LIB"
CA="$T/ca.key"
CA_PUB=$(jsd-listener --gen-ca "$CA") || fail "--gen-ca failed"
[ "$(stat -c %a "$CA")" = 600 ] || fail "CA key mode is not 600"
jsd-listener --gen-ca "$CA" 2>/dev/null && fail "--gen-ca overwrote a key"
cert_for() {  # NAME GROUPS [CA_FILE]
  jsd-listener --sign-cert "${3:-$CA}" --name "$1" --groups "$2" --days 1 "$(pub_key "$(node_key "$1")")" > "$T/$1.cert" ||
    fail "cannot sign a certificate for $1"
}
JOBS='"groups": {"ops": ["alpha"]},
  "allow_adhoc": ["alpha"],
  "jobs": {
    "touch": {"command": ["/bin/sh", "-c", "echo \"$JSD_FROM_NODE\" >> '"$T"'/ran-$JSD_PARAM_TAG"]},
    "opsonly": {"command": ["/bin/true"], "allow": ["@ops"]},
    "gammaonly": {"command": ["/bin/true"], "allow": ["gamma"]},
    "webonly": {"command": ["/bin/true"], "allow": ["@web"]}
  }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
cert_for gamma web,ops
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "\"trusted_cas\": [\"$CA_PUB\"], $JOBS"
make_node gamma 127.0.0.4 - '{"beta":"127.0.0.3:4455"}' "\"cert_file\": \"$T/gamma.cert\""
node_cmd beta jsd-listener -t >/dev/null 2>"$T/err" || fail "beta's config: $(cat "$T/err")"
start_node alpha
start_node beta
start_node gamma

node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta failed"
qs_before=$(child_named "${NODE_PID[beta]}" QueueServer_alpha | sort | tr '\n' ' ')
[ -n "$qs_before" ] || fail "no QueueServer_alpha on beta"

# The impostor: its own key, alpha's name, another address.
make_node impostor 127.0.0.10 - '{"beta":"127.0.0.3:4455"}'
sed -i 's/"node": "impostor"/"node": "alpha"/' "$T/impostor.json"
start_node impostor
node_cmd impostor jsd-submit beta -- /bin/sh -c "touch $T/impostor-ran" > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "impostor: expected 255, got $rc ($(cat "$T/err"))"
grep -q "^jsd-submit: error: beta refused the link: key not known for alpha" "$T/err" || fail "impostor: unclear error: $(cat "$T/err")"
node_cmd impostor jsd-submit -p TAG=impostor beta touch > /dev/null 2>&1 && fail "the impostor ran a job"
[ -e "$T/impostor-ran" ] || [ -e "$T/ran-impostor" ] && fail "the impostor's job ran"
wait_until "beta logs the impostor" grep -q "refused 127.0.0.10:[0-9]* ('alpha'): key not known for alpha (key b2:" "$T/beta.log"
node_cmd alpha jsd-ping -c 3 -i 0.01 -q beta >/dev/null || fail "alpha's pings failed after the impostor"
qs_after=$(child_named "${NODE_PID[beta]}" QueueServer_alpha | sort | tr '\n' ' ')
[ "$qs_before" = "$qs_after" ] || fail "alpha's queue-server on beta changed: $qs_before -> $qs_after"
grep -q "replacing QueueServer_alpha" "$T/beta.log" && fail "the impostor replaced alpha's queue-server"
[ "$(grep -c "key not known for alpha" "$T/beta.log")" -le 2 ] || fail "the refusal was logged at every retry"
stop_node impostor

# A certified node that is not in beta's peers: accepted, linked back to.
node_cmd gamma jsd-ping -c 2 -i 0.01 -q beta >/dev/null || fail "certified gamma -> beta failed: $(tail -3 "$T/gamma.log")"
wait_until "beta links back to gamma" link_is_up beta gamma out
[ -n "$(procs "QueueClient_gamma")" ] || fail "no QueueClient_gamma towards the address gamma announced"
grep -q "gamma (127.0.0.4:[0-9]*, key b2:[^,]*, certificate) passed the handshake" "$T/beta.log" || fail "beta did not log the certificate"
# Called by its address, the certified peer answers (its reply comes back
# over its own link, under its name).
node_cmd beta jsd-ping -c 1 -W 10 -q 127.0.0.4:4455 >/dev/null || fail "beta -> gamma by address failed"

# allow by @group (config group for alpha, certificate group for gamma) and by name.
node_cmd alpha jsd-submit beta opsonly || fail "alpha (config group ops) refused opsonly"
node_cmd gamma jsd-submit beta opsonly || fail "gamma (certificate group ops) refused opsonly"
node_cmd gamma jsd-submit beta gammaonly || fail "gamma refused gammaonly"
node_cmd gamma jsd-submit beta webonly || fail "gamma (group web, from its certificate only) refused webonly"
node_cmd alpha jsd-submit beta webonly 2>/dev/null && fail "alpha ran webonly"
node_cmd alpha jsd-submit beta gammaonly 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "alpha ran gammaonly: $rc"
grep -qx "jsd-submit: error: beta refused job gammaonly: alpha is not allowed to run it" "$T/err" || fail "unclear refusal: $(cat "$T/err")"
node_cmd gamma jsd-submit beta -- /bin/sh -c "touch $T/adhoc-gamma" 2>/dev/null && fail "gamma ran an ad-hoc command"
[ -e "$T/adhoc-gamma" ] && fail "an ad-hoc command ran for gamma"
node_cmd alpha jsd-submit -p TAG=alpha beta touch || fail "alpha's job failed"
[ "$(cat "$T/ran-alpha")" = alpha ] || fail "the job did not see JSD_FROM_NODE=alpha"

# The audit log: one JSON line per decision, with the key's fingerprint;
# links refused at the handshake in audit-refused.log, apart (issue 24).
python3 - "$T/beta/state/audit.log" "$T/beta/state/audit-refused.log" <<'PY' ||
import json, sys
refused = [json.loads(l) for l in open(sys.argv[2])]
assert any(l.get("what") == "link" and l.get("peer") == "alpha" and l.get("verdict") == "refused" and
           l.get("reason") == "key not known for alpha" for l in refused), refused
lines = [json.loads(l) for l in open(sys.argv[1])]
assert not any(l.get("what") == "link" and l.get("verdict") == "refused" for l in lines), lines
lines += refused
def has(**kw): return any(all(l.get(k) == v for k, v in kw.items()) for l in lines)
assert has(what="link", peer="gamma", verdict="allowed", by="certificate")
assert has(what="job", peer="alpha", job="gammaonly", verdict="refused", reason="beta refused job gammaonly: alpha is not allowed to run it")
assert has(what="job", peer="gamma", job="opsonly", verdict="allowed")
assert has(what="adhoc", peer="gamma", verdict="refused")
assert all(l["key"].startswith("b2:") for l in lines if l["what"] == "link"), lines
assert all("time" in l for l in lines)
PY
  fail "audit: $(cat "$T/beta/state/audit.log" "$T/beta/state/audit-refused.log")"
[ "$(stat -c %a "$T/beta/state/audit.log")" = 600 ] || fail "audit.log is not 0600"

# This node would not accept the other: eta pins two keys for beta (a
# rollover, so XX) and beta holds neither.
K1=$(jsd-listener --gen-key "$T/k1.key") && K2=$(jsd-listener --gen-key "$T/k2.key") || fail "--gen-key"
make_node eta 127.0.0.7 - "{\"beta\": {\"address\": \"127.0.0.3:4455\", \"public_key\": [\"$K1\", \"$K2\"]}}"
start_node eta
node_cmd eta jsd-ping -c 1 -W 10 -q beta > /dev/null 2> "$T/err" && fail "eta linked to a beta with another key"
grep -q "^jsd-ping: error: cannot link to beta: cannot authenticate beta: key not known for beta" "$T/err" || fail "rejected: unclear error: $(cat "$T/err")"
stop_node eta

# A certificate from another CA, and a revoked key: refused.
jsd-listener --gen-ca "$T/rogue.key" > /dev/null || fail "--gen-ca"
cert_for delta ops "$T/rogue.key"
make_node delta 127.0.0.5 - '{"beta":"127.0.0.3:4455"}' "\"cert_file\": \"$T/delta.cert\""
start_node delta
node_cmd delta jsd-ping -c 1 -W 10 -q beta > /dev/null 2> "$T/err" && fail "a rogue CA's certificate was accepted"
grep -q "beta refused the link: certificate for delta is signed by an untrusted CA" "$T/err" || fail "rogue CA: unclear error: $(cat "$T/err")"
stop_node delta
stop_node beta
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "\"trusted_cas\": [\"$CA_PUB\"], \"revoked\": [\"$(pub_key "$T/keys/gamma.key")\"], $JOBS"
start_node beta
node_cmd gamma jsd-ping -c 1 -W 10 -q beta > /dev/null 2> "$T/err" && fail "a revoked key was accepted"
grep -q "beta refused the link: key of gamma is revoked" "$T/err" || fail "revoked: unclear error: $(cat "$T/err")"
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta after beta's restart"

# A psk on one side only: refused with the reason; on both: works.
jsd-listener --gen-psk "$T/psk" 2>/dev/null || fail "--gen-psk failed"
stop_node beta
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "\"psk_file\": \"$T/psk\""
start_node beta
node_cmd alpha jsd-ping -c 1 -W 10 -q beta > /dev/null 2> "$T/err" && fail "a node without the psk was accepted"
grep -q "beta refused the link: missing psk" "$T/err" || fail "psk: unclear error: $(cat "$T/err")"
stop_node alpha
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' "\"psk_file\": \"$T/psk\""
start_node alpha
node_cmd alpha jsd-ping -c 1 -W 10 -q beta > /dev/null || fail "alpha with the psk was refused"

# -t names the mistakes: a certificate for another node, a bad key.
make_node bad 127.0.0.6 - '{"beta": {"address": "127.0.0.3:4455", "public_key": "not-a-key"}}' "\"cert_file\": \"$T/gamma.cert\""
node_cmd bad jsd-listener -t > /dev/null 2> "$T/err" && fail "-t accepted a bad config"
grep -q "peers.beta.public_key: 'not-a-key' is not a public key" "$T/err" || fail "-t: $(cat "$T/err")"
pass
