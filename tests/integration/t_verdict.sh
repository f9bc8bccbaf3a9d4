# jsd's verdict apart from the job's status (issue 22): a job that exits
# 255 itself is reported as the job's own; a job its node lost (listener
# and job supervisor killed while it ran) gives 254 and one line naming
# it, never 255, which promises that a job did not run.
source "$JSD_TEST_LIB"
JOBS='"jobs": {
    "own255": { "command": ["/bin/sh", "-c", "exit 255"] },
    "hang":   { "command": ["/bin/sh", "-c", "echo $$ > \"$JSD_PARAM_PIDFILE\"; exec sleep 600"] }
  }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
start_node alpha
start_node beta

# The job's own 255: the same status, told apart in --json and on stderr.
node_cmd alpha jsd-submit --json beta own255 > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "own 255: exited $rc ($(cat "$T/err"))"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["exit_status"]==255 and d["exit_from"]=="job" and d["state"]=="exited", d' "$T/out" ||
  fail "own 255: --json: $(cat "$T/out")"
grep -q "^jsd-submit: beta: job [0-9a-f]* exited with 255: its own status, not jsd's$" "$T/err" ||
  fail "own 255: stderr: $(cat "$T/err")"
# jsd's own 255 (the job is not defined there) says jsd.
node_cmd alpha jsd-submit --json beta nosuch > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -q "^jsd-submit: error: " "$T/err" || fail "jsd's 255: exited $rc ($(cat "$T/err"))"

# A job whose end jsd cannot know (state unknown): beta's listener, then
# its job supervisor, then the job are killed (by the pids this test started and their children).
node_cmd alpha jsd-submit --no-wait --id L.beta -p "PIDFILE=$T/pid" beta hang > /dev/null || fail "hang not queued"
wait_until "the job runs" test -s "$T/pid"
jobpid=$(cat "$T/pid")
sup=""
for p in $(children_of "${NODE_PID[beta]}"); do
  case "$(tr '\0' ' ' < /proc/"$p"/cmdline 2>/dev/null)" in "$JSD_BIN/jsd-job "*) sup=$p ;; esac
done
[ -n "$sup" ] || fail "no job supervisor among beta's children: $(children_of "${NODE_PID[beta]}")"
kill -9 "${NODE_PID[beta]}"
wait "${NODE_PID[beta]}" 2>/dev/null
unset "NODE_PID[beta]"
kill -9 "$sup" "$jobpid"
# Gone, or dead and not yet reaped (their parents are gone: a zombie).
dead() { local st; st=$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null); [ -z "$st" ] || [ "$st" = Z ]; }
wait_until "the supervisor and the job are gone" eval "dead $sup && dead $jobpid"
start_node beta
node_cmd alpha jsd-submit --status L.beta beta --json > "$T/st.json" 2> "$T/err" || fail "--status: $(cat "$T/err")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="unknown" and d["exit_status"]==254 and d["ended"]>=d["started"] and d["exit_from"]=="jsd", d' "$T/st.json" ||
  fail "lost record: $(cat "$T/st.json")"
node_cmd alpha jsd-submit -q --json --attach L.beta beta > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 254 ] || fail "--attach to a lost job exited $rc, not 254 ($(cat "$T/err"))"
[ "$(wc -l < "$T/err")" = 1 ] && grep -q "^jsd-submit: error: beta: the outcome of job L.beta cannot be known: " "$T/err" ||
  fail "lost: not one line naming the job: $(cat "$T/err")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["exit_status"]==254 and d["exit_from"]=="jsd", d' "$T/out" ||
  fail "lost: --json: $(cat "$T/out")"
# On a set (beta's id there is L.beta: a duplicate of the lost job, not run
# again), the lost node makes it 254 beside an unknown node's 255, and the
# summary counts it apart.
node_cmd alpha jsd-submit --id L beta,nosuch hang > /dev/null 2> "$T/err"; rc=$?
[ $rc = 254 ] || fail "set with a lost job: exited $rc ($(cat "$T/err"))"
grep -q "^jsd-submit: 2 nodes: 0 ok, 1 failed, 1 unknown$" "$T/err" || fail "set summary: $(cat "$T/err")"
pass
