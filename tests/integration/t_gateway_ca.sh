# Gateways with CA certificates alone (issue 20 item 2): alpha reaches
# gamma through beta with "gamma": {"via": "beta"} and no public_key; gamma
# has no entry for alpha at all. alpha asks gamma for its certificate
# through beta (once), checks it against trusted_cas and seals for the key
# it certifies; gamma opens the request with the key of the certificate
# alpha sends with it, judges alpha by name and by its certificate's
# groups, and audits it with the gateway. A node without a certificate
# cannot be reached that way: one clear error, exit 255, nothing run.
source "$JSD_TEST_LIB"
CA="$T/ca.key"
CA_PUB=$(jsd-listener --gen-ca "$CA") || fail "--gen-ca failed"
cert_for() {  # NAME GROUPS
  jsd-listener --sign-cert "$CA" --name "$1" --groups "$2" --days 1 "$(pub_key "$(node_key "$1")")" > "$T/$1.cert" ||
    fail "cannot sign a certificate for $1"
}
cert_for alpha ops
cert_for beta gateways
cert_for gamma web
cert_for delta gateways
cert_for zeta web
node_key epsilon > /dev/null
CAS="\"trusted_cas\": [\"$CA_PUB\"]"
JOBS='"jobs": {
    "hello": {"command": ["/bin/sh", "-c", "echo \"hello from $JSD_NODE to $JSD_FROM_NODE\"; exit 3"]},
    "ledger": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/ledger-$JSD_JOB_ID; echo ran"]},
    "opsonly": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/ops-ran"], "allow": ["@ops"]},
    "webonly": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/web-ran"], "allow": ["@web"]}
  }'
# alpha -> beta -> gamma (one gateway), alpha -> beta -> delta -> zeta (two).
make_node alpha 127.0.0.2 - '{"beta":{"address":"127.0.0.3:4455"},"gamma":{"via":"beta"},"epsilon":{"via":"beta"},
  "delta":{"via":"beta"},"zeta":{"via":"delta"}}' "$CAS, \"cert_file\": \"$T/alpha.cert\""
make_node beta 127.0.0.3 - '{"alpha":{"address":"127.0.0.2:4455"},"gamma":{"address":"127.0.0.4:4455"},"epsilon":"127.0.0.5:4455",
  "delta":{"address":"127.0.0.6:4455"},"zeta":{"via":"delta"}}' "$CAS, \"cert_file\": \"$T/beta.cert\", \"gateway\": true"
make_node gamma 127.0.0.4 - '{"beta":{"address":"127.0.0.3:4455"}}' "$CAS, \"cert_file\": \"$T/gamma.cert\", $JOBS"
make_node delta 127.0.0.6 - '{"beta":{"address":"127.0.0.3:4455"},"zeta":{"address":"127.0.0.7:4455"}}' \
  "$CAS, \"cert_file\": \"$T/delta.cert\", \"gateway\": true"
make_node zeta 127.0.0.7 - '{"delta":{"address":"127.0.0.6:4455"}}' "$CAS, \"cert_file\": \"$T/zeta.cert\", $JOBS"
make_node epsilon 127.0.0.5 - '{"beta":"127.0.0.3:4455"}' '"jobs": {"ledger": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/ledger-$JSD_JOB_ID"]}}'
for n in alpha beta gamma epsilon delta zeta; do
  node_cmd $n jsd-listener -t > "$T/t.out" 2>&1 || fail "jsd-listener -t on $n: $(cat "$T/t.out")"
done
for n in alpha beta gamma epsilon delta zeta; do start_node $n; done
runs() { [ -e "$T/ledger-$1" ] && wc -l < "$T/ledger-$1" || echo 0; }
ran_once() { [ "$(runs "$1")" = 1 ]; }

# 1. A job through beta, known by certificate only: the same output and
# exit status as a direct one; gamma's audit names alpha and beta.
node_cmd alpha jsd-submit gamma hello > "$T/via.out" 2> "$T/via.err"; rc=$?
[ $rc = 3 ] || fail "jsd-submit gamma hello via beta exited $rc, not 3: $(cat "$T/via.err")"
[ "$(cat "$T/via.out")" = "hello from gamma to alpha" ] || fail "stdout: $(cat "$T/via.out")"
grep -q "learnt gamma's key from its certificate (through beta)" "$T/alpha.log" || fail "alpha did not log the lookup"
grep '"what":"job"' "$T/gamma/state/audit.log" | grep '"peer":"alpha"' | grep -q '"via":\["beta"\]' ||
  fail "gamma's audit log does not name alpha via beta: $(cat "$T/gamma/state/audit.log")"
[ -z "$(child_named "${NODE_PID[gamma]}" QueueServer_alpha)" ] || fail "gamma has a link from alpha"
# Again, and a ping: the key is known, no second lookup.
node_cmd alpha jsd-submit gamma ledger > /dev/null 2> "$T/l.err" || fail "second job: $(cat "$T/l.err")"
node_cmd alpha jsd-ping -c 1 gamma > "$T/ping.out" 2>&1 || fail "jsd-ping gamma via beta: $(cat "$T/ping.out")"
[ "$(grep -c "learnt gamma's key" "$T/alpha.log")" = 1 ] || fail "gamma's certificate was asked for more than once"

# 2. Allow lists see the originator's certificate groups (ops, not web).
node_cmd alpha jsd-submit gamma opsonly > /dev/null 2> "$T/ops.err" || fail "opsonly (alpha is @ops by certificate): $(cat "$T/ops.err")"
[ -e "$T/ops-ran" ] || fail "opsonly did not run"
node_cmd alpha jsd-submit gamma webonly > /dev/null 2> "$T/web.err"; rc=$?
[ $rc = 255 ] || fail "webonly exited $rc, not 255: $(cat "$T/web.err")"
[ -e "$T/web-ran" ] && fail "webonly ran for alpha"

# 3. A durable --no-wait after alpha restarted (it forgot gamma's key):
# asked for again, then run once.
stop_node alpha
start_node alpha
node_cmd alpha jsd-submit --no-wait --id nw1 gamma ledger > "$T/nw.out" 2> "$T/nw.err" || fail "--no-wait: $(cat "$T/nw.err")"
wait_until "nw1 leaves alpha's outbox" test ! -e "$T/alpha/state/outbox/nw1.json"
wait_until "nw1 ran on gamma" ran_once nw1
[ "$(grep -c "learnt gamma's key" "$T/alpha.log")" = 2 ] || fail "gamma's key was not asked for again after the restart"

# 4. A fan-out to a node one gateway away and one two gateways away, both
# known by certificate only: each asked for once, each job run once.
node_cmd alpha jsd-submit --id fan1 gamma,zeta ledger > "$T/fan.out" 2> "$T/fan.err" || fail "fan-out: $(cat "$T/fan.err")"
ran_once fan1.gamma && ran_once fan1.zeta || fail "fan1 ran $(runs fan1.gamma) times on gamma, $(runs fan1.zeta) on zeta"
grep -q "learnt zeta's key from its certificate (through beta)" "$T/alpha.log" || fail "alpha did not learn zeta's key"
grep '"what":"job"' "$T/zeta/state/audit.log" | grep '"peer":"alpha"' | grep -q '"via":\["beta","delta"\]' ||
  fail "zeta's audit log does not name alpha via beta and delta: $(cat "$T/zeta/state/audit.log")"

# 5. epsilon has no certificate: one clear error, 255, nothing run.
node_cmd alpha jsd-submit epsilon ledger > /dev/null 2> "$T/eps.err"; rc=$?
[ $rc = 255 ] || fail "epsilon without a certificate: exited $rc, not 255: $(cat "$T/eps.err")"
grep -q "cannot learn epsilon's key.*epsilon has no certificate" "$T/eps.err" || fail "unclear error: $(cat "$T/eps.err")"
[ -z "$(grep -l . "$T"/epsilon/state/audit.log 2>/dev/null | xargs grep -l '"what":"job"' 2>/dev/null)" ] ||
  fail "epsilon audited a job: $(cat "$T/epsilon/state/audit.log")"
pass
