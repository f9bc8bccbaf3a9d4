# Node names are names, never addresses (issue 24: a certificate named
# "127.0.6.21:4455" took the calls made to that address). Such a name is
# refused with one line in a configuration and by --sign-cert; a call by
# address goes to the address (t_identity.sh: a certified peer called by
# its address answers over its own link).
source "$JSD_TEST_LIB"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
rule="(1-64 of letters, digits, . _ -; a name, not an address: no ':' or '/')"

sed 's/"node": "alpha"/"node": "127.0.6.21:4455"/' "$T/alpha.json" > "$T/bad.json"
jsd-listener -t --config "$T/bad.json" > /dev/null 2> "$T/err" && fail "-t accepted a node named like an address"
grep -qF "node: '127.0.6.21:4455' is not a node name $rule" "$T/err" || fail "unclear: $(cat "$T/err")"
jsd-listener --config "$T/bad.json" 2> "$T/err" && fail "a listener started as 127.0.6.21:4455"

sed 's/"beta": {/"127.0.6.21:4455": {/' "$T/alpha.json" > "$T/bad.json"
jsd-listener -t --config "$T/bad.json" > /dev/null 2> "$T/err" && fail "-t accepted a peer named like an address"
grep -qF "peers: '127.0.6.21:4455' is not a node name $rule" "$T/err" || fail "unclear: $(cat "$T/err")"

CA="$T/ca.key"
jsd-listener --gen-ca "$CA" > /dev/null || fail "--gen-ca failed"
for name in 127.0.6.21:4455 a/b; do
  jsd-listener --sign-cert "$CA" --name "$name" --days 1 "$(pub_key "$(node_key alpha)")" > "$T/cert" 2> "$T/err" &&
    fail "--sign-cert signed '$name'"
  grep -qF "needs --name NAME $rule" "$T/err" || fail "unclear: $(cat "$T/err")"
done
jsd-listener --sign-cert "$CA" --name alpha --days 1 "$(pub_key "$(node_key alpha)")" > "$T/cert" ||
  fail "--sign-cert refused alpha"
pass
