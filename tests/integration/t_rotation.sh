# Key rotation without downtime: beta pins both of alpha's keys; alpha is
# restarted with its new key between two batches of submissions (durable,
# --no-wait, and a waiting one after): none fails, each runs once, and beta
# sees the new key. Then beta drops the old key: the new one still links,
# the old one (say, a stolen copy) is refused.
source "$JSD_TEST_LIB"
OLD=$(node_key alpha)
NEW="$T/alpha-new.key"
jsd-listener --gen-key "$NEW" > /dev/null || fail "--gen-key"
fp() {  # the b2: fingerprint of a private key file's public key
  python3 -c 'import base64,hashlib,sys; k=base64.b64decode(sys.argv[1]); print("b2:"+base64.urlsafe_b64encode(hashlib.blake2b(k,digest_size=32).digest()[:12]).decode().rstrip("="))' "$(pub_key "$1")"
}
MARK='"jobs": {"mark": {"command": ["/bin/sh", "-c", "echo $JSD_PARAM_K >> '"$T"'/marks"]}}'
beta_with_keys() {
  make_node beta 127.0.0.3 - "{\"alpha\": {\"address\": \"127.0.0.2:4455\", \"public_key\": $1}}" "$MARK"
}
beta_with_keys "[\"$(pub_key "$OLD")\", \"$(pub_key "$NEW")\"]"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
start_node beta
start_node alpha

for i in $(seq 1 10); do
  node_cmd alpha jsd-submit --no-wait --id r$i -p K=$i beta mark >/dev/null || fail "submission $i failed"
done
# The rollover: alpha restarts with its new key while submissions wait.
stop_node alpha
sed -i "s|\"key_file\": \"$OLD\"|\"key_file\": \"$NEW\"|" "$T/alpha.json"
grep -q "$NEW" "$T/alpha.json" || fail "could not switch alpha's key"
start_node alpha
for i in $(seq 11 20); do
  node_cmd alpha jsd-submit --no-wait --id r$i -p K=$i beta mark >/dev/null || fail "submission $i failed after the rollover"
done
node_cmd alpha jsd-submit -p K=21 beta mark || fail "a waiting submission failed after the rollover"
wait_until "all 21 submissions ran" [ "$(wc -l < "$T/marks" 2>/dev/null)" -ge 21 ]
[ "$(sort -n "$T/marks" | tr '\n' ' ')" = "$(seq 1 21 | tr '\n' ' ')" ] || fail "runs: $(sort -n "$T/marks" | tr '\n' ' ')"
grep -q "\"key\":\"$(fp "$OLD")\"" "$T/beta/state/audit.log" || fail "beta's audit log lacks alpha's old key"
grep -q "\"key\":\"$(fp "$NEW")\"" "$T/beta/state/audit.log" || fail "beta never saw alpha's new key"
# beta links back to alpha over XX (two keys pinned): the new key answers.
[ "$(link_state beta alpha out)" = up ] || fail "beta's link to alpha is not up"

# The old key is retired: beta keeps only the new one.
stop_node beta
beta_with_keys "\"$(pub_key "$NEW")\""
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha (new key) refused after the old key was dropped"
make_node thief 127.0.0.10 "$OLD" '{"beta":"127.0.0.3:4455"}'
sed -i 's/"node": "thief"/"node": "alpha"/' "$T/thief.json"
start_node thief
node_cmd thief jsd-ping -c 1 -W 10 -q beta > /dev/null 2> "$T/err" && fail "the old key still links"
grep -q "beta refused the link: key not known for alpha" "$T/err" || fail "old key: unclear error: $(cat "$T/err")"
pass "21 submissions across a key rollover, each once; the old key refused after"
