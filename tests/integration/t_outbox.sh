# The sender's outbox and the submitters around it (issue 19):
# - a waiting --id re-submission while the first copy is still in the
#   outbox joins it: it prints the job's output and exits with its status;
# - a retry by --id that joins a running job says nothing of bytes "not
#   kept" (it starts at the output's present end by design);
# - a durable request no node would take (an 8 MiB argv element) is refused
#   by the sender before it is kept; one kept by an older version is
#   refused for good at the next start (kept as the id's answer), never
#   sent again, and the sender stops at once on SIGTERM;
# - a waiting submission re-sent after its link broke, whose job had run,
#   prints the job's kept output and exits with its status;
# - --no-wait with the submitting listener killed right after its outbox
#   write: jsd-submit exits 254 ("cannot know", one line naming the id),
#   never 255, and the job runs once after the restart.
source "$JSD_TEST_LIB"
JOBS='"jobs": {
    "ledger": {"command": ["/bin/sh", "-c", "echo out; echo x >> '"$T"'/ledger-$JSD_JOB_ID; exit 3"]},
    "slow": {"command": ["/bin/sh", "-c", "echo first; while [ ! -e '"$T"'/go ]; do sleep 0.05; done; echo second; exit 4"]}
  }, "allow_adhoc": ["alpha"]'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' '"max_frame": 16777216'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
runs() { [ -e "$T/ledger-$1" ] && wc -l < "$T/ledger-$1" || echo 0; }
ran_once() { [ "$(runs "$1")" = 1 ]; }
start_node alpha

# 1. A waiting re-submission joins the copy in the outbox (beta is down).
node_cmd alpha jsd-submit --no-wait --id join1 beta ledger > "$T/out" 2> "$T/err" || fail "--no-wait: $(cat "$T/err")"
[ -e "$T/alpha/state/outbox/join1.json" ] || fail "join1 is not in alpha's outbox"
node_cmd alpha jsd-submit --id join1 beta ledger > "$T/join.out" 2> "$T/join.err" &
joiner=$!
wait_until "alpha lets the re-submission join" grep -q "submission join1 is in the outbox already" "$T/alpha.log"
kill -0 $joiner 2>/dev/null || fail "the waiting re-submission ended at once: $(cat "$T/join.err")"
start_node beta
wait $joiner; rc=$?
[ $rc = 3 ] || fail "the joiner exited $rc, not the job's 3: $(cat "$T/join.err")"
[ "$(cat "$T/join.out")" = out ] || fail "the joiner printed '$(cat "$T/join.out")', not the job's output"
grep -q "cannot queue durably" "$T/join.err" && fail "the joiner was refused: $(cat "$T/join.err")"
wait_until "join1 leaves the outbox" test ! -e "$T/alpha/state/outbox/join1.json"
[ "$(runs join1)" = 1 ] || fail "join1 ran $(runs join1) times"

# 2. A retry by --id joins the running job from the output's present end:
# no "bytes were not kept" for bytes that were kept.
node_cmd alpha jsd-submit --id slow1 beta slow > "$T/slow.out" 2> "$T/slow.err" &
first=$!
wait_until "the job prints its first line" grep -q first "$T/slow.out"
node_cmd alpha jsd-submit --id slow1 beta slow > "$T/retry.out" 2> "$T/retry.err" &
retry=$!
wait_until "the retry attaches" grep -q "attached to job slow1 (running)" "$T/retry.err"
touch "$T/go"
wait $first; rc1=$?
wait $retry; rc2=$?
[ $rc1 = 4 ] && [ $rc2 = 4 ] || fail "exit statuses $rc1 and $rc2, not 4: $(cat "$T/slow.err" "$T/retry.err")"
grep -q "not kept" "$T/retry.err" && fail "the retry claims lost output: $(cat "$T/retry.err")"
[ "$(cat "$T/retry.out")" = second ] || fail "the retry printed '$(cat "$T/retry.out")'"
[ "$(cat "$T/slow.out")" = "$(printf 'first\nsecond')" ] || fail "the submitter printed '$(cat "$T/slow.out")'"

# 5. A waiting submission whose link broke after its job had run, before
# any answer came back (beta's link to alpha is stopped): alpha sends it
# again once its link is up, as a resumption, and the submitter gets the
# job's kept output and status, not "already ran there; not run again".
node_cmd alpha jsd-ping -c 1 -q beta > /dev/null || fail "alpha -> beta"
back=$(child_named "${NODE_PID[beta]}" QueueClient_alpha)
[ -n "$back" ] || fail "no QueueClient_alpha on beta"
kill -STOP $back
node_cmd alpha jsd-submit --id rs1 beta ledger > "$T/rs.out" 2> "$T/rs.err" &
resender=$!
wait_until "rs1 ran on beta" grep -q "job rs1 (ledger) ended" "$T/beta.log"
# The link that carried it breaks: beta's end of it is killed.
qs=$(child_named "${NODE_PID[beta]}" QueueServer_alpha)
[ -n "$qs" ] || fail "no QueueServer_alpha on beta"
kill -KILL $qs
wait_until "alpha sends rs1 again" grep -q "durable submission rs1 sent to beta again" "$T/alpha.log"
kill -CONT $back
wait $resender; rc=$?
[ $rc = 3 ] || fail "the re-sent submission exited $rc, not the job's 3: $(cat "$T/rs.err")"
[ "$(cat "$T/rs.out")" = out ] || fail "the re-sent submission printed '$(cat "$T/rs.out")', not the job's output: $(cat "$T/rs.err")"
grep -q "already ran there" "$T/rs.err" && fail "told 'already ran there': $(cat "$T/rs.err")"
[ "$(runs rs1)" = 1 ] || fail "rs1 ran $(runs rs1) times"

# 3. An 8 MiB argv element: no node takes it (128 KiB at most), and beta's
# link could not even carry it. Refused before it is kept.
RAW="python3 $(dirname "$0")/raw_send.py"
prefix='{"op":"submit","id":"big1","durable":true,"stream":false,"submitted":1,"params":{},"argv":["/bin/echo","'
$RAW "$T/alpha/state/control.sock" 1 beta job 0 "$prefix" '"]}' 8388608 > "$T/raw" 2>&1
grep -q "^error job big1 not queued for beta: .*argv" "$T/raw" || fail "the oversized request was not refused: $(cut -c1-300 "$T/raw")"
[ -e "$T/alpha/state/outbox/big1.json" ] && fail "the oversized request is in the outbox"

# Within the field limits, but larger than beta reads (its max_frame is
# 1 MiB, alpha's 16 MiB): beta's queue-server would close the link on it,
# at every link-up, for ever. beta says its max_frame in the handshake, and
# alpha's client keeps the request back: refused (255, one line), kept as
# the id's refusal, out of the outbox, and the link stays up.
fill=$(head -c 120000 /dev/zero | tr '\0' a)
params=()
for i in $(seq 1 12); do params+=(-p "P$i=$fill"); done
downs=$(grep -c "link to beta is down" "$T/alpha.log")
node_cmd alpha jsd-submit --no-wait --id big3 "${params[@]}" beta ledger > "$T/big3.out" 2> "$T/big3.err"; rc=$?
[ $rc = 255 ] || fail "a request larger than beta's max_frame: exit $rc, not 255: $(cut -c1-300 "$T/big3.err")"
[ "$(wc -l < "$T/big3.err")" = 1 ] && grep -q "more than beta reads (its max_frame is 1048576)" "$T/big3.err" ||
  fail "not one line saying beta's max_frame: $(cut -c1-300 "$T/big3.err")"
[ -e "$T/alpha/state/outbox/big3.json" ] && fail "big3 stayed in the outbox"
[ -e "$T/alpha/state/outbox/refused/big3.json" ] || fail "big3's refusal was not kept"
node_cmd alpha jsd-submit --id small1 beta ledger > /dev/null 2>&1; rc=$?
[ $rc = 3 ] || fail "a small job after big3: exit $rc"
[ "$(runs big3)" = 0 ] || fail "big3 ran"
[ "$(grep -c "link to beta is down" "$T/alpha.log")" = "$downs" ] || fail "the link to beta broke on big3"

# One kept by an older version (wider limits) is refused for good at the
# next start: out of the outbox, kept as big2's answer, sent no more.
stop_node alpha
python3 - "$T/alpha/state/outbox/big2.json" <<'PY'
import json, sys
body = {"op": "submit", "id": "big2", "durable": True, "stream": False, "submitted": 1, "params": {},
        "argv": ["/bin/echo", "a" * (8 << 20)]}
json.dump({"id": "big2", "to": "beta", "object": "job", "body": json.dumps(body)}, open(sys.argv[1], "w"))
PY
start_node alpha
wait_until "alpha refuses big2" grep -q "durable submission big2 to beta refused here" "$T/alpha.log"
[ -e "$T/alpha/state/outbox/big2.json" ] && fail "big2 stayed in the outbox"
[ -e "$T/alpha/state/outbox/refused/big2.json" ] || fail "big2's refusal was not kept"
node_cmd alpha jsd-submit --status big2 beta > "$T/st" 2>&1; rc=$?
[ $rc = 255 ] && grep -q "refused, never run" "$T/st" || fail "--status big2: $rc $(cat "$T/st")"
[ "$(stat -c %s "$T/alpha.log")" -lt 1000000 ] || fail "alpha's log grew to $(stat -c %s "$T/alpha.log") bytes"
n_before=$(grep -c "big2" "$T/alpha.log")
stop_node alpha  # returns once it has exited: a hang fails the test by its timeout
start_node alpha
node_cmd alpha jsd-ping -c 1 -q beta > /dev/null || fail "alpha -> beta after the restart"
[ "$(grep -c "big2" "$T/alpha.log")" = "$n_before" ] || fail "big2 was handled again after a restart: $(grep big2 "$T/alpha.log")"

# 4. --no-wait, and alpha's listener killed (SIGKILL) right after it wrote
# the submission to its outbox (strace kills it as it flushes the
# directory, after the rename), before it answered: 254, not 255.
if command -v strace > /dev/null; then
  stop_node beta
  strace -p "${NODE_PID[alpha]}" -o /dev/null -e trace=fsync -e inject=fsync:signal=KILL:when=2 2> "$T/strace.err" &
  tracer=$!
  wait_until "strace attaches" grep -q "attached" "$T/strace.err"
  # (in a subshell: bash's own "Killed" note for the listener goes to the
  # test's standard error, not into jsd-submit's)
  (node_cmd alpha jsd-submit --no-wait --id nw1 beta ledger > "$T/nw.out" 2> "$T/nw.err"); rc=$?
  wait "${NODE_PID[alpha]}" 2>/dev/null
  unset "NODE_PID[alpha]"
  wait $tracer 2>/dev/null
  [ -e "$T/alpha/state/outbox/nw1.json" ] || fail "nw1 was not written before the kill ($(cat "$T/nw.err"))"
  [ $rc = 254 ] || fail "--no-wait with its listener killed exited $rc, not 254: $(cat "$T/nw.err")"
  [ "$(wc -l < "$T/nw.err")" = 1 ] && grep -q "^jsd-submit: error: .*job nw1 may have been queued" "$T/nw.err" ||
    fail "not one line naming nw1: $(cat "$T/nw.err")"
  start_node beta
  start_node alpha
  wait_until "nw1 runs after the restart" ran_once nw1
  wait_until "nw1 leaves the outbox" test ! -e "$T/alpha/state/outbox/nw1.json"
  [ "$(runs nw1)" = 1 ] || fail "nw1 ran $(runs nw1) times"
else
  log "strace not installed: the killed-listener case is not run"
fi
pass
