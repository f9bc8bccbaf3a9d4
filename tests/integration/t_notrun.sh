# 255 means "not run, and will not run": a jsd-submit that gives up before
# its job started (a refused link, --timeout, Ctrl-C) withdraws its request
# from the queue, and the job does not run when the link comes up later.
# A durable submission the target refuses leaves the outbox and --status
# says why; with the link up, --no-wait itself reports the refusal.
source "$JSD_TEST_LIB"
JOBS='"jobs": {"mark": {"command": ["/bin/sh", "-c", "echo \"$JSD_JOB_ID\" >> '"$T"'/ran"]}}'
OTHER=$(pub_key "$(node_key other)")
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","gamma":"127.0.0.4:4455"}'
# beta pins another key for alpha: it refuses alpha's link.
make_node beta 127.0.0.3 - '{"alpha":{"address":"127.0.0.2:4455","public_key":"'"$OTHER"'"}}' "$JOBS"
make_node gamma 127.0.0.4 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
start_node alpha
start_node beta
ran() { [ -e "$T/ran" ] && grep -qx "$1" "$T/ran"; }

# A refused link: 255, withdrawn.
node_cmd alpha jsd-submit --id refused-1 beta mark > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "refused link: expected 255, got $rc ($(cat "$T/err"))"
grep -q "^jsd-submit: error: beta refused the link: key not known for alpha.*; the request was withdrawn: the job was not run$" "$T/err" ||
  fail "refused link: unclear error: $(cat "$T/err")"

# --timeout while gamma is down: 255, withdrawn. (Its request carries an
# expiry too; gamma's log below shows that it never even arrived.)
node_cmd alpha jsd-submit --timeout 1 --id timeout-1 gamma mark > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "--timeout: expected 255, got $rc ($(cat "$T/err"))"
grep -q "^jsd-submit: error: no answer from gamma within 1 s; the request was withdrawn: the job was not run$" "$T/err" ||
  fail "--timeout: unclear error: $(cat "$T/err")"

# Interrupted before gamma confirmed (no expiry: only the withdraw stops it).
# (exec'd directly, not through node_cmd, so $! is jsd-submit)
JSD_CONFIG="$T/alpha.json" jsd-submit --id int-1 --json gamma mark > "$T/out" 2> "$T/err" &
sub=$!
wait_until "jsd-submit waits on gamma's link" grep -q "link down" "$T/err"
kill -INT $sub
wait $sub; rc=$?
[ $rc = 130 ] || fail "interrupt: expected 130, got $rc ($(cat "$T/err"))"
grep -q "^jsd-submit: interrupted before gamma confirmed the job; the request was withdrawn: the job was not run$" "$T/err" ||
  fail "interrupt: unclear message: $(cat "$T/err")"

# Now the links come up: beta pins alpha's real key, gamma starts.
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
stop_node beta
start_node beta
start_node gamma
# A queue is delivered in order: once a ping has come back, anything
# queued before it has reached the node and been recorded there.
node_cmd alpha jsd-ping -c 1 -W 10 -q beta > /dev/null || fail "alpha -> beta after the fix"
node_cmd alpha jsd-ping -c 1 -W 10 -q gamma > /dev/null || fail "alpha -> gamma"
for id in refused-1 timeout-1 int-1; do
  ran "$id" && fail "job $id ran after its submitter exited with 'not run'"
  for n in beta gamma; do
    [ -e "$T/$n/state/jobs/$id.json" ] && fail "$n has a record of $id"
    node_cmd alpha jsd-submit --status "$id" "$n" > /dev/null 2>&1 && fail "$n knows $id"
  done
done
grep -q "timeout-1\|int-1" "$T/gamma.log" && fail "gamma heard of a withdrawn submission: $(grep "timeout-1\|int-1" "$T/gamma.log")"
# The control: the same submission now runs, once.
node_cmd alpha jsd-submit -q --id refused-1 beta mark || fail "refused-1 did not run on a good link"
ran refused-1 || fail "the marker is not written (the test cannot see runs)"

# A durable submission of a job beta does not define, over a link that is
# up: jsd-submit waits for beta's answer and reports the refusal (255, one
# line, no id). It is refused for good, out of the outbox, and --status says
# why.
node_cmd alpha jsd-submit --no-wait --id durable-1 beta nosuch > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "--no-wait refused over an up link: expected 255, got $rc ($(cat "$T/out" "$T/err"))"
[ "$(cat "$T/err")" = "jsd-submit: error: no job 'nosuch' on beta" ] || fail "--no-wait refusal: $(cat "$T/err")"
[ -s "$T/out" ] && fail "--no-wait printed an id for a refused submission: $(cat "$T/out")"
[ -e "$T/alpha/state/outbox/durable-1.json" ] && fail "a refused submission is still in the outbox"
[ -e "$T/alpha/state/outbox/refused/durable-1.json" ] || fail "no refusal record kept"
node_cmd alpha jsd-submit --status durable-1 beta > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "--status of a refused id: expected 255, got $rc ($(cat "$T/out" "$T/err"))"
grep -q "^job durable-1 (nosuch) to beta: refused, never run" "$T/out" || fail "--status: $(cat "$T/out")"
grep -q "error: no job 'nosuch' on beta" "$T/out" || fail "--status has no reason: $(cat "$T/out")"
node_cmd alpha jsd-submit --status durable-1 --json beta > "$T/out" 2> /dev/null
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["state"]=="refused" and r["id"]=="durable-1" and "nosuch" in r["error"], r' "$T/out" ||
  fail "--status --json: $(cat "$T/out")"
# Accepted over an up link: 0 and the id, once beta has it.
id=$(node_cmd alpha jsd-submit --no-wait --id durable-ok beta mark) || fail "--no-wait over an up link failed"
[ "$id" = durable-ok ] || fail "--no-wait printed '$id'"
node_cmd alpha jsd-submit --status durable-ok beta > /dev/null || fail "beta has no record of durable-ok right after 0"

# With the link down, --no-wait returns 0 at once; the refusal comes when
# gamma is back, and --status reports it. The record of an accepted one
# keeps its submission time apart from its arrival (gamma was down between).
stop_node gamma
id=$(node_cmd alpha jsd-submit --no-wait --id durable-2 gamma nosuch) || fail "--no-wait to a down node failed"
[ "$id" = durable-2 ] || fail "--no-wait printed '$id'"
node_cmd alpha jsd-submit --no-wait --json --id late-1 gamma mark > "$T/late.json" || fail "--no-wait late-1 failed"
start_node gamma
wait_until "gamma's refusal of durable-2 is kept" test -e "$T/alpha/state/outbox/refused/durable-2.json"
node_cmd alpha jsd-submit --status durable-2 gamma > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -q "^job durable-2 (nosuch) to gamma: refused, never run" "$T/out" ||
  fail "--status of a refusal made while the link was down: $rc $(cat "$T/out" "$T/err")"
wait_until "late-1 ran on gamma" ran late-1
node_cmd alpha jsd-submit --status late-1 --json gamma > "$T/late.rec" || fail "--status late-1"
python3 -c '
import json, sys
q = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
assert r["submitted"] == q["submitted"], ("the record has not the submission time", q, r)
assert r["accepted"] > r["submitted"], ("no separate arrival time", r)
' "$T/late.json" "$T/late.rec" || fail "late-1's times: $(cat "$T/late.json" "$T/late.rec")"
# An id nobody knows does not read like a job name.
node_cmd alpha jsd-submit --status nosuchid gamma > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] && [ "$(cat "$T/err")" = "jsd-submit: error: no submission with id 'nosuchid' on gamma" ] ||
  fail "--status of an unknown id: $rc $(cat "$T/err")"

# A restart has nothing left to send.
stop_node alpha
start_node alpha
grep -q "durable submissions to deliver" "$T/alpha.log" && fail "the refused submission is still in the outbox"
pass
