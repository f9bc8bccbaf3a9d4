# Who may run a job is decided again when it starts (issue 24: a revoked
# or removed peer's queued job still ran, in 4 of 4 variants). A job
# queued behind another, whose submitter loses the right to run it (its
# allow list emptied and SIGHUP; its key revoked and a restart), does not
# start: its record says why, the audit log has a refusal "at":"start",
# and a waiting submitter exits 255.
source "$JSD_TEST_LIB"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
# gate: one at a time; a run waits for $T/release, then says it ran.
gate_jobs() {
  cat <<EOJ
"jobs": { "gate": { "command": ["/bin/sh", "-c", "while [ ! -e $T/release ]; do sleep 0.05; done; echo \"\$JSD_PARAM_TAG\" >> $T/ran"],
                    "max_parallel": 1, "allow": $1 } }${2:+, $2}
EOJ
}
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$(gate_jobs '["alpha"]')"
start_node alpha
start_node beta
touch "$T/ran"

# state ID: the job's state on beta, as beta's own tools see it.
state() { node_cmd beta jsd-submit --status "$1" beta 2>/dev/null | sed -n 's/^job [^ ]* ([^)]*) on beta: \([a-z]*\).*/\1/p'; }
is() { [ "$(state "$1")" = "$2" ]; }

# 1. The allow list emptied, SIGHUP: the queued job is refused at its start.
node_cmd alpha jsd-submit --no-wait -q --id g1 -p TAG=g1 beta gate >/dev/null || fail "g1 not queued"
wait_until "g1 runs" is g1 running
node_cmd alpha jsd-submit -q --id g2 -p TAG=g2 beta gate > "$T/g2.out" 2> "$T/g2.err" &
g2=$!
wait_until "g2 waits in beta's queue" is g2 queued
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$(gate_jobs '[]')"
kill -HUP "${NODE_PID[beta]}"
wait_until "beta reloads" grep -q "configuration reloaded from $T/beta.json" "$T/beta.log"
touch "$T/release"
wait_until "g1 ends" is g1 exited
wait "$g2"
rc=$?
[ $rc = 255 ] || fail "g2: expected 255 (it did not run), got $rc: $(cat "$T/g2.out" "$T/g2.err")"
grep -q "alpha is not allowed to run it (checked again at its start)" "$T/g2.err" || fail "g2: unclear: $(cat "$T/g2.err")"
is g2 failed || fail "g2's record: $(node_cmd beta jsd-submit --status g2 beta 2>&1)"
[ "$(cat "$T/ran")" = g1 ] || fail "a job ran that should not have: $(cat "$T/ran")"
grep -q "job g2 (gate) from alpha refused at its start: " "$T/beta.log" || fail "no log line for g2"
python3 - "$T/beta/state/audit.log" <<'PY' || fail "no audit line for g2's start: $(cat "$T/beta/state/audit.log")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert any(l.get("id") == "g2" and l.get("verdict") == "refused" and l.get("at") == "start" for l in lines)
PY

# 2. The key revoked while beta is down: at its start the queued job is
# refused (the restart starts it, before alpha links again).
rm -f "$T/release"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$(gate_jobs '["alpha"]')"
kill -HUP "${NODE_PID[beta]}"
wait_until "beta reloads again" [ "$(grep -c "configuration reloaded from $T/beta.json" "$T/beta.log")" -ge 2 ]
node_cmd alpha jsd-submit --no-wait -q --id g3 -p TAG=g3 beta gate >/dev/null || fail "g3 not queued"
wait_until "g3 runs" is g3 running
node_cmd alpha jsd-submit --no-wait -q --id g4 -p TAG=g4 beta gate >/dev/null || fail "g4 not queued"
wait_until "g4 waits in beta's queue" is g4 queued
stop_node beta
touch "$T/release"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' \
  "$(gate_jobs '["alpha"]' "\"revoked\": [\"$(pub_key "$T/keys/alpha.key")\"]")"
start_node beta
wait_until "g4 is refused" is g4 failed
node_cmd beta jsd-submit --status g4 beta 2>&1 | grep -q "the key of alpha (.*) is revoked (checked again at its start)" ||
  fail "g4: unclear: $(node_cmd beta jsd-submit --status g4 beta 2>&1)"
grep -q "g4" "$T/ran" && fail "g4 ran with a revoked key"
python3 - "$T/beta/state/audit.log" <<'PY' || fail "no audit line for g4's start"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert any(l.get("id") == "g4" and l.get("verdict") == "refused" and l.get("at") == "start" for l in lines)
PY

# 3. A certified peer that is not in beta's peers (gamma: its certificate
# is its only credential), its key revoked while beta is down: the restart
# starts its queued job before gamma links again, when beta knows gamma's
# key only from the record (from_key). Refused, not run.
stop_node beta
rm -f "$T/release"
CA="$T/ca.key"
CA_PUB=$(jsd-listener --gen-ca "$CA") || fail "--gen-ca failed"
jsd-listener --sign-cert "$CA" --name gamma --days 1 "$(pub_key "$(node_key gamma)")" > "$T/gamma.cert" ||
  fail "cannot sign gamma's certificate"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "\"trusted_cas\": [\"$CA_PUB\"], $(gate_jobs '["alpha", "gamma"]')"
make_node gamma 127.0.0.4 - '{"beta":"127.0.0.3:4455"}' "\"cert_file\": \"$T/gamma.cert\""
start_node beta
start_node gamma
node_cmd gamma jsd-submit --no-wait -q --id g5 -p TAG=g5 beta gate >/dev/null || fail "g5 not queued"
wait_until "g5 runs" is g5 running
node_cmd gamma jsd-submit --no-wait -q --id g6 -p TAG=g6 beta gate >/dev/null || fail "g6 not queued"
wait_until "g6 waits in beta's queue" is g6 queued
grep -q '"from_key":"' "$T/beta/state/jobs/g6.json" || fail "g6's record does not keep its submitting key: $(cat "$T/beta/state/jobs/g6.json")"
stop_node gamma
stop_node beta
touch "$T/release"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' \
  "\"trusted_cas\": [\"$CA_PUB\"], $(gate_jobs '["alpha", "gamma"]' "\"revoked\": [\"$(pub_key "$T/keys/gamma.key")\"]")"
start_node beta
wait_until "g6 is refused" is g6 failed
node_cmd beta jsd-submit --status g6 beta 2>&1 | grep -q "the key of gamma (.*) is revoked (checked again at its start)" ||
  fail "g6: unclear: $(node_cmd beta jsd-submit --status g6 beta 2>&1)"
grep -q "g6" "$T/ran" && fail "g6 ran with a revoked key"
pass
