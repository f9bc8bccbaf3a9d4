# Gateways (issue 20 item 2): alpha reaches gamma through beta ("via"),
# with no link of its own to gamma, and gets the same output and exit
# status as over a direct link; and a gateway that tampers (beta's own
# control socket sends what a compromised beta could put on its link to
# gamma, sealed with jsd's own code by tests/relay_seal) is refused by the
# target, audited, and runs nothing:
# - altered on its way (a flipped byte of the box), a changed envelope;
# - a replayed request (also after the target restarted);
# - a request claiming another originator (sealed with the gateway's key);
# - a request sealed outside the validity window;
# - a job the originator may not run (refused by its allow list, as alpha's).
source "$JSD_TEST_LIB"
SEAL="$JSD_BIN/../tests/relay_seal"
[ -x "$SEAL" ] || fail "no $SEAL (built with the tests)"
JOBS='"jobs": {
    "hello": {"command": ["/bin/sh", "-c", "echo \"hello from $JSD_NODE\"; echo warn >&2; exit 3"]},
    "ledger": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/ledger-$JSD_JOB_ID; echo ran"]},
    "slow": {"command": ["/bin/sh", "-c", "echo started; while [ ! -e '"$T"'/go ]; do sleep 0.05; done; echo done"]},
    "secret": {"command": ["/bin/sh", "-c", "echo x >> '"$T"'/secret-ran"], "allow": ["beta"]}
  }'
for n in alpha beta gamma; do node_key $n > /dev/null; done
pub() { pub_key "$T/keys/$1.key"; }
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","gamma":{"via":"beta","public_key":"'"$(pub gamma)"'"}}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455"}' "\"gateway\": true, $JOBS"
make_node gamma 127.0.0.4 - '{"beta":"127.0.0.3:4455","alpha":{"via":"beta","public_key":"'"$(pub alpha)"'"}}' "$JOBS"
for n in alpha beta gamma; do
  node_cmd $n jsd-listener -t > "$T/t.out" 2>&1 || fail "jsd-listener -t on $n: $(cat "$T/t.out")"
done
for n in alpha beta gamma; do start_node $n; done
runs() { [ -e "$T/ledger-$1" ] && wc -l < "$T/ledger-$1" || echo 0; }
ran_once() { [ "$(runs "$1")" = 1 ]; }

# 1. Ping and a job through beta: the same as direct (beta -> gamma).
node_cmd alpha jsd-ping -c 2 -i 0.1 gamma > "$T/ping.out" 2> "$T/ping.err" || fail "jsd-ping gamma via beta: $(cat "$T/ping.err")"
grep -q "2 calls sent, 2 replies received" "$T/ping.out" || fail "ping summary: $(cat "$T/ping.out")"
grep -q "^JSD-PING gamma (via beta)" "$T/ping.out" || fail "ping header: $(cat "$T/ping.out")"
[ "$(grep -c "^reply from gamma: seq=" "$T/ping.out")" = 2 ] || fail "ping replies: $(cat "$T/ping.out")"
node_cmd alpha jsd-submit gamma hello > "$T/via.out" 2> "$T/via.err"; rc=$?
[ $rc = 3 ] || fail "jsd-submit gamma hello via beta exited $rc, not 3: $(cat "$T/via.err")"
node_cmd beta jsd-submit gamma hello > "$T/direct.out" 2> "$T/direct.err"; rc=$?
[ $rc = 3 ] || fail "direct jsd-submit exited $rc"
cmp -s "$T/via.out" "$T/direct.out" || fail "output via beta '$(cat "$T/via.out")' differs from direct '$(cat "$T/direct.out")'"
[ "$(cat "$T/via.out")" = "hello from gamma" ] || fail "stdout: $(cat "$T/via.out")"
grep -qx warn "$T/via.err" || fail "stderr via beta: $(cat "$T/via.err")"
# alpha has no link to gamma: no QueueClient_gamma, and gamma none from alpha.
[ -z "$(child_named "${NODE_PID[alpha]}" QueueClient_gamma)" ] || fail "alpha linked to gamma directly"
[ -z "$(child_named "${NODE_PID[gamma]}" QueueServer_alpha)" ] || fail "gamma has a link from alpha"
# gamma's audit log names the originator and the gateway.
grep '"what":"job"' "$T/gamma/state/audit.log" | grep '"peer":"alpha"' | grep -q '"via":\["beta"\]' ||
  fail "gamma's audit log does not name alpha via beta: $(cat "$T/gamma/state/audit.log")"
# JSON output too: the record says who and through which gateway.
node_cmd alpha jsd-submit --json gamma ledger > "$T/json.out" 2>/dev/null || fail "--json via beta"
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert d["node"]=="gamma" and d["exit_status"]==0, d' "$T/json.out" ||
  fail "--json via beta: $(cat "$T/json.out")"

# 2. A job alpha may not run ("allow": ["beta"]): refused by gamma as
# alpha's, 255, nothing run, audited with the gateway.
node_cmd alpha jsd-submit gamma secret > /dev/null 2> "$T/secret.err"; rc=$?
[ $rc = 255 ] || fail "secret via beta exited $rc, not 255: $(cat "$T/secret.err")"
[ -e "$T/secret-ran" ] && fail "secret ran"
grep '"verdict":"refused"' "$T/gamma/state/audit.log" | grep '"job":"secret"' | grep -q '"via":\["beta"\]' ||
  fail "the refusal of secret is not audited with via: $(cat "$T/gamma/state/audit.log")"

# 3. --status, --attach, --cancel and --history through beta.
node_cmd alpha jsd-submit --id s1 gamma slow > "$T/slow.out" 2> "$T/slow.err" &
slow=$!
wait_until "slow runs on gamma" grep -qx started "$T/slow.out"
node_cmd alpha jsd-submit --status s1 gamma > "$T/st.out" 2>&1 || true
grep -q running "$T/st.out" || fail "--status via beta: $(cat "$T/st.out")"
node_cmd alpha jsd-submit --history gamma > "$T/hist.out" 2>&1 || fail "--history via beta: $(cat "$T/hist.out")"
grep -q s1 "$T/hist.out" || fail "--history via beta lacks s1: $(cat "$T/hist.out")"
node_cmd alpha jsd-submit --attach s1 gamma > "$T/att.out" 2> "$T/att.err" &
att=$!
wait_until "the attach joins" grep -qx started "$T/att.out"
touch "$T/go"
wait $slow; rc1=$?
wait $att; rc2=$?
[ $rc1 = 0 ] && [ $rc2 = 0 ] || fail "slow/attach exited $rc1/$rc2: $(cat "$T/slow.err" "$T/att.err")"
grep -qx done "$T/att.out" || fail "--attach via beta: $(cat "$T/att.out")"
rm -f "$T/go"
node_cmd alpha jsd-submit --id c1 gamma slow > /dev/null 2> "$T/c1.err" &
c1=$!
wait_until "c1 runs on gamma" grep -q "job c1 (slow from alpha) started" "$T/gamma.log"
node_cmd alpha jsd-submit --cancel c1 gamma > "$T/cancel.out" 2>&1 || fail "--cancel via beta: $(cat "$T/cancel.out")"
wait $c1; rc=$?
[ $rc = 143 ] || [ $rc = 137 ] || fail "the cancelled job's submitter exited $rc: $(cat "$T/c1.err")"

# 4. A durable --no-wait while the gateway is down waits in alpha's outbox
# and runs once when beta is back.
stop_node beta
node_cmd alpha jsd-submit --no-wait --id nw1 gamma ledger > "$T/nw.out" 2> "$T/nw.err" || fail "--no-wait: $(cat "$T/nw.err")"
[ -e "$T/alpha/state/outbox/nw1.json" ] || fail "nw1 is not in alpha's outbox"
start_node beta
wait_until "nw1 leaves alpha's outbox" test ! -e "$T/alpha/state/outbox/nw1.json"
wait_until "nw1 ran on gamma" ran_once nw1
node_cmd alpha jsd-submit --status nw1 gamma > "$T/nwst.out" 2>&1
grep -q exited "$T/nwst.out" || fail "--status nw1: $(cat "$T/nwst.out")"
[ "$(runs nw1)" = 1 ] || fail "nw1 ran $(runs nw1) times"

# 5. The tampering gateway: beta's control socket sends to gamma what a
# compromised beta could. Each refused by gamma, audited, nothing run.
GPUB=$(pub gamma)
SOCK="$T/beta/state/control.sock"
raw() { python3 "$(dirname "$JSD_TEST_LIB")/raw_send.py" "$SOCK" 0 gamma relay 0 "$1" ""; }
body() { echo "{\"op\":\"submit\",\"job\":\"ledger\",\"id\":\"$1\",\"stream\":false}"; }
audited_refusal() {  # PATTERN: a relay refusal in gamma's audit log with it
  grep '"what":"relay"' "$T/gamma/state/audit.log" | grep '"verdict":"refused"' | grep -q "$1"
}
# a. A byte of the box flipped.
env=$("$SEAL" "$T/keys/alpha.key" "$GPUB" alpha gamma job "$(body t1)" beta --flip 60) || fail "relay_seal"
raw "$env" > "$T/raw.out" || fail "raw send: $(cat "$T/raw.out")"
grep -q "not sealed with alpha's key" "$T/raw.out" || fail "altered box: $(cat "$T/raw.out")"
audited_refusal "not sealed with alpha" || fail "altered box not audited"
# b. The envelope's object changed (its box says job).
env=$("$SEAL" "$T/keys/alpha.key" "$GPUB" alpha gamma job "$(body t2)" beta | sed 's/"object":"job"/"object":"ping"/')
raw "$env" > "$T/raw.out"
grep -q "does not say what its envelope says" "$T/raw.out" || fail "changed envelope: $(cat "$T/raw.out")"
# c. Another originator claimed: beta seals with its own key as alpha.
env=$("$SEAL" "$T/keys/beta.key" "$GPUB" alpha gamma job "$(body t3)" beta)
raw "$env" > "$T/raw.out"
grep -q "not sealed with alpha's key" "$T/raw.out" || fail "forged originator: $(cat "$T/raw.out")"
# d. Sealed outside the window (20 minutes ago).
env=$("$SEAL" "$T/keys/alpha.key" "$GPUB" alpha gamma job "$(body t4)" beta --age 1200)
raw "$env" > "$T/raw.out"
grep -q "validity window" "$T/raw.out" || fail "old request: $(cat "$T/raw.out")"
# e. A job alpha may not run, sealed by alpha itself: gamma's allow list.
env=$("$SEAL" "$T/keys/alpha.key" "$GPUB" alpha gamma job '{"op":"submit","job":"secret","id":"t5","stream":false}' beta)
raw "$env" > "$T/raw.out"
grep -q "not allowed\|may not\|refused\|not in" "$T/raw.out" || fail "secret sealed by alpha: $(cat "$T/raw.out")"
[ -e "$T/secret-ran" ] && fail "secret ran"
# f. A request alpha sealed (run once), then replayed: refused, also after
# gamma restarts.
env=$("$SEAL" "$T/keys/alpha.key" "$GPUB" alpha gamma job "$(body t6)" beta)
raw "$env" > "$T/raw.out"
grep -q accepted "$T/raw.out" || fail "the genuine request: $(cat "$T/raw.out")"
wait_until "t6 ran" ran_once t6
raw "$env" > "$T/raw.out"
grep -q "a replay" "$T/raw.out" || fail "replay: $(cat "$T/raw.out")"
audited_refusal "a replay" || fail "replay not audited"
stop_node gamma
start_node gamma
wait_until "beta's link to gamma is back" raw "$env"
raw "$env" > "$T/raw.out"
grep -q "a replay" "$T/raw.out" || fail "replay after gamma's restart: $(cat "$T/raw.out")"
for t in t1 t2 t3 t4; do [ "$(runs $t)" = 0 ] || fail "$t ran"; done
[ "$(runs t6)" = 1 ] || fail "t6 ran $(runs t6) times"
# g. A node that is not a gateway does not relay: gamma refuses a request
# for alpha that beta hands it.
env=$("$SEAL" "$T/keys/beta.key" "$(pub alpha)" beta alpha ping '{}' -)
python3 "$(dirname "$JSD_TEST_LIB")/raw_send.py" "$SOCK" 0 gamma relay 0 "$env" "" > "$T/raw.out"
grep -q "not a gateway" "$T/raw.out" || fail "non-gateway relayed: $(cat "$T/raw.out")"
pass
