# The crash matrix (issue 8): kill -9 of a process around a job, in the
# middle of the job; afterwards the job ran exactly once, its record holds
# one end with its true exit status and output, the waiting jsd-submit
# printed every line once and exited with the job's status, --attach gives
# the same, and no process or descriptor leaked. Each case runs
# JSD_CRASH_RUNS times (5 in check; JSD_CRASH_RUNS=50 for the long form).
# The job waits on a FIFO between its two lines: the test kills while the
# job is blocked there, then releases it (events, not sleeps).
source "$JSD_TEST_LIB"
RUNS=${JSD_CRASH_RUNS:-5}
JOBS='"jobs": {
    "two":   { "command": ["/bin/sh", "-c", "echo one; read x < \"$JSD_PARAM_FIFO\"; echo two; echo ran >> \"$JSD_PARAM_MARK\"; exit 7"] },
    "stubborn": { "command": ["/bin/sh", "-c", "trap \"\" TERM; echo $$ > \"$JSD_PARAM_PIDFILE\"; echo up; while :; do sleep 1; done"], "timeout_s": 3 },
    "quick": { "command": ["/bin/sh", "-c", "echo \"$JSD_JOB_ID\" >> \"$JSD_PARAM_MARK\"; exit 3"] }
  }, "job_kill_grace_s": 1, "job_supervisor_slow_s": 1'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "first ping failed"
# One job first: beta's job supervisor, and the listener's two connections
# to it, are there before any descriptor is counted.
node_cmd alpha jsd-submit -q -p "MARK=$T/warm" beta quick >/dev/null; [ $? = 3 ] || fail "the first job did not run"

fd_count() { ls /proc/"$1"/fd 2>/dev/null | wc -l; }
# The job supervisors of a node (all nodes without an argument): at most
# one each, and none once the listeners stopped with no job running.
sup_count() { pgrep -f "^$JSD_BIN/jsd-job --jobs-dir $T/${1:-}" | wc -l; }

# has_lines FILE N: FILE has at least N lines.
has_lines() { [ "$(wc -l < "$1" 2>/dev/null)" -ge "$2" ]; }
# A member of a job's record (--status --json, one line: no JSON parser
# process per query, there are hundreds).
record_field() { node_cmd alpha jsd-submit --status "$1" beta --json 2>/dev/null | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
record_state() { record_field "$1" state; }
is_finished() { s=$(record_state "$1"); [ -n "$s" ] && [ "$s" != running ] && [ "$s" != queued ]; }

# check_run ID DIR SUBMIT_RC VICTIM: the assertions after one case.
check_run() {
  local id=$1 d=$2 rc=$3 victim=$4
  [ "$(cat "$d/mark" 2>/dev/null | wc -l)" = 1 ] || fail "$victim: job $id ran $(cat "$d/mark" 2>/dev/null | wc -l) times"
  wait_until "job $id has its end" is_finished "$id"
  node_cmd alpha jsd-submit --status "$id" beta --json > "$d/status.json" 2>&1
  grep -q '"state":"exited"' "$d/status.json" && grep -q '"exit_status":7,' "$d/status.json" &&
    grep -q '"stdout_tail":"one\\ntwo\\n"' "$d/status.json" || fail "$victim: job $id's record: $(cat "$d/status.json")"
  if [ "$victim" != submit ]; then
    [ "$rc" = 7 ] || fail "$victim: the waiting jsd-submit exited $rc, not 7: $(cat "$d/err")"
    [ "$(cat "$d/out")" = "$(printf 'one\ntwo')" ] || fail "$victim: the waiting jsd-submit printed: $(cat "$d/out")"
  fi
  node_cmd alpha jsd-submit -q --attach "$id" beta > "$d/attach" 2>"$d/attach.err"
  local arc=$?
  [ "$arc" = 7 ] || fail "$victim: --attach exited $arc: $(cat "$d/attach.err")"
  [ "$(cat "$d/attach")" = "$(printf 'one\ntwo')" ] || fail "$victim: --attach printed: $(cat "$d/attach")"
}

# one_case VICTIM KILLCMD [end] (it sees $sub, the waiting jsd-submit's pid): a waiting submission of "two"; once it printed
# its first line, KILLCMD runs (it kills and, where needed, restarts); with
# "end", KILLCMD runs just after the job is released, as it ends.
one_case() {
  local victim=$1 kill_cmd=$2 at=${3:-mid} i
  for i in $(seq 1 "$RUNS"); do
    local d="$T/$victim.$i" id="crash-$victim-$i"
    mkdir -p "$d"
    mkfifo "$d/fifo"
    node_cmd alpha jsd-submit --id "$id" -p "FIFO=$d/fifo" -p "MARK=$d/mark" beta two > "$d/out" 2> "$d/err" &
    sub=$!
    wait_until "$victim $i: the job printed its first line" has_lines "$d/out" 1
    [ "$at" = end ] || eval "$kill_cmd"
    # Release the job: it prints its second line, marks and exits 7.
    echo go > "$d/fifo"
    [ "$at" = end ] && eval "$kill_cmd"
    local rc=0
    wait "$sub" 2>/dev/null || rc=$?
    check_run "$id" "$d" "$rc" "$victim"
  done
  log "$victim: $RUNS runs, each ran once with its status and output"
}

restart_node() {
  kill -9 "${NODE_PID[$1]}"
  wait "${NODE_PID[$1]}" 2>/dev/null
  unset "NODE_PID[$1]"
  start_node "$1"
}
kill_qc() { local p; p=$(child_named "${NODE_PID[alpha]}" QueueClient_beta); [ -n "$p" ] && kill -9 $p || fail "no QueueClient_beta among alpha's children"; }
kill_qs() { local p; p=$(child_named "${NODE_PID[beta]}" QueueServer_alpha); [ -n "$p" ] && kill -9 $p || fail "no QueueServer_alpha among beta's children"; }
kill_submit() { kill -9 "$sub"; }
# beta's job supervisor: found by beta's own jobs directory (this test's).
# (spawned by the listener running now: a restarted one lets its
# predecessor's go before the first job of each case, see below).
sup_pid() { local p; p=$(child_named "${NODE_PID[beta]}" "$JSD_BIN/jsd-job" | head -1); [ -n "$p" ] && echo "$p"; }
kill_sup() { local p; p=$(sup_pid) && kill -9 "$p" || fail "no job supervisor among beta's children"; }
# Hung (SIGSTOP, as a stalled disk would), with starts sent to it meanwhile;
# then it goes on, or is killed with those starts unanswered.
hang_sup() {
  local p said
  p=$(sup_pid) || fail "no job supervisor on beta"
  said=$(grep -c "the job supervisor (pid $p) has not answered for" "$T/beta.log")
  kill -STOP "$p"
  batch_submit
  # The listener is not blocked by it: it answers and accepts meanwhile.
  node_cmd beta jsd-listener --status >/dev/null || fail "beta's listener does not answer while its supervisor hangs"
  case $1 in
    RESTART)  # beta's listener dies and starts again while it hangs
      restart_node beta
      node_cmd beta jsd-listener --status >/dev/null || fail "beta's restarted listener does not answer"
      kill -CONT "$p" ;;
    CONT)  # reported slow (log, --status), then it goes on and is said to answer again
      wait_until "beta reports its hung supervisor slow" sup_slow
      node_cmd beta jsd-listener --status | grep -q "^job supervisor (pid $p) is slow: " ||
        fail "beta's --status does not say its supervisor is slow: $(node_cmd beta jsd-listener --status)"
      wait_until "beta logs that its supervisor is slow" log_has_more beta "the job supervisor (pid $p) has not answered for" "$said"
      said=$(grep -c "the job supervisor (pid $p) answers again" "$T/beta.log")
      kill -CONT "$p"
      wait_until "beta says its supervisor answers again" log_has_more beta "the job supervisor (pid $p) answers again" "$said" ;;
    *) kill -"$1" "$p"; kill -CONT "$p" 2>/dev/null ;;
  esac
}
# log_has_more NODE TEXT N: NODE's log has more than N lines with TEXT.
log_has_more() { [ "$(grep -c "$2" "$T/$1.log")" -gt "$3" ]; }
sup_slow() { node_cmd beta jsd-listener --status --json | grep -q '"slow":true'; }

# A --no-wait batch of 20 goes out just before each kill: each runs once.
BATCH=0
batch_submit() {
  BATCH=$((BATCH + 1))
  local k
  for k in $(seq 1 20); do
    node_cmd alpha jsd-submit --no-wait --id "batch-$BATCH-$k" -p "MARK=$T/batch.$BATCH" beta quick >/dev/null ||
      fail "batch $BATCH: submission $k not queued"
  done
}
batch_done() {
  local k
  for k in $(seq 1 20); do is_finished "batch-$1-$k" || return 1; done
}
batch_check() {
  wait_until "batch $1's 20 jobs ended" batch_done "$1"
  [ "$(sort "$T/batch.$1" | uniq | wc -l)" = 20 ] && [ "$(wc -l < "$T/batch.$1")" = 20 ] ||
    fail "batch $1: $(wc -l < "$T/batch.$1") runs of $(sort -u "$T/batch.$1" | wc -l) ids, not 20 of 20"
  local k
  for k in $(seq 1 20); do
    [ "$(record_status "batch-$1-$k")" = 3 ] || fail "batch $1: job $k's status is $(record_status "batch-$1-$k")"
  done
}
record_status() { record_field "$1" exit_status; }

# no_leak: one queue-server and one client per direction, at most one job
# supervisor a node, and the listeners that were not killed hold no more
# descriptors.
no_leak() {
  local spec n
  for spec in "QueueServer_alpha beta" "QueueServer_beta alpha" "QueueClient_alpha beta" "QueueClient_beta alpha"; do
    set -- $spec
    n=$(pgrep -f "^$1 --config $T/$2.json" | wc -l)
    [ "$n" -le 1 ] || fail "$victim: $n processes $1 on $2"
  done
  for n in alpha beta; do
    [ "$(sup_count "$n/")" -le 1 ] || fail "$victim: $(sup_count "$n/") job supervisors on $n: $(pgrep -af jsd-job)"
  done
}

# JSD_CRASH_CASES picks cases (default: all).
CASES=0
for victim in ${JSD_CRASH_CASES:-beta-listener alpha-listener alpha-client beta-server submit sup-kill sup-hang sup-hang-kill \
  sup-hang-restart beta-listener-end sup-kill-end alpha-listener-end}; do
  CASES=$((CASES + 1))
  case $victim in
    beta-listener) kill_cmd="restart_node beta" ;;
    alpha-listener) kill_cmd="restart_node alpha" ;;
    alpha-client) kill_cmd=kill_qc ;;
    beta-server) kill_cmd=kill_qs ;;
    submit) kill_cmd=kill_submit ;;
    sup-kill) kill_cmd=kill_sup ;;
    sup-hang) kill_cmd="hang_sup CONT" ;;
    sup-hang-kill) kill_cmd="hang_sup KILL" ;;
    sup-hang-restart) kill_cmd="hang_sup RESTART" ;;
    beta-listener-end) kill_cmd="restart_node beta" ;;
    alpha-listener-end) kill_cmd="restart_node alpha" ;;
    sup-kill-end) kill_cmd=kill_sup ;;
  esac
  # A job first: a listener that restarted lets its predecessor's job
  # supervisor go once it runs none of its jobs, and starts its own (two
  # connections and a pidfd) at the next job.
  node_cmd alpha jsd-submit -q -p "MARK=$T/warm" beta quick >/dev/null; [ $? = 3 ] || fail "$victim: the warm-up job did not run"
  fd_a=$(fd_count "${NODE_PID[alpha]}") fd_b=$(fd_count "${NODE_PID[beta]}")
  pid_a=${NODE_PID[alpha]} pid_b=${NODE_PID[beta]}
  case $victim in
    sup-hang*) one_case "$victim" "$kill_cmd" ;;
    *-end) one_case "$victim" "batch_submit; $kill_cmd" end ;;
    *) one_case "$victim" "batch_submit; $kill_cmd" ;;
  esac
  for b in $(seq $((BATCH - RUNS + 1)) "$BATCH"); do batch_check "$b"; done
  wait_until "no process left over" no_leak
  # The descriptors of a listener that lived through the case.
  [ "${NODE_PID[alpha]}" != "$pid_a" ] || [ "$(fd_count "$pid_a")" -le "$fd_a" ] ||
    fail "$victim: alpha's listener holds $(fd_count "$pid_a") descriptors, $fd_a before"
  [ "${NODE_PID[beta]}" != "$pid_b" ] || [ "$(fd_count "$pid_b")" -le "$fd_b" ] ||
    fail "$victim: beta's listener holds $(fd_count "$pid_b") descriptors, $fd_b before"
done

# The job that ignores SIGTERM and outlives its timeout_s while its
# listener is dead: the restarted listener still kills it at its deadline.
d="$T/stubborn"
mkdir -p "$d"
node_cmd alpha jsd-submit --no-wait --id stubborn-1 -p "PIDFILE=$d/pid" beta stubborn >/dev/null || fail "stubborn: not queued"
wait_until "the stubborn job runs" test -s "$d/pid"
jobpid=$(cat "$d/pid")
kill -9 "${NODE_PID[beta]}"
wait "${NODE_PID[beta]}" 2>/dev/null
unset "NODE_PID[beta]"
start_node beta
wait_until "the stubborn job has its end" is_finished stubborn-1
[ "$(record_state stubborn-1)" = timeout ] || fail "stubborn: state $(record_state stubborn-1), not timeout"
kill -0 "$jobpid" 2>/dev/null && fail "stubborn: the job ($jobpid) still runs past its deadline"

# The same job with its supervisor killed: its timeout still reaches it
# (the orphan is signalled by the next supervisor), and its end is true.
d="$T/stubborn2"
mkdir -p "$d"
node_cmd alpha jsd-submit --no-wait --id stubborn-2 -p "PIDFILE=$d/pid" beta stubborn >/dev/null || fail "stubborn 2: not queued"
wait_until "the second stubborn job runs" test -s "$d/pid"
jobpid=$(cat "$d/pid")
kill_sup || fail "no job supervisor to kill"
wait_until "the second stubborn job has its end" is_finished stubborn-2
[ "$(record_state stubborn-2)" = timeout ] || fail "stubborn 2: state $(record_state stubborn-2), not timeout"
kill -0 "$jobpid" 2>/dev/null && fail "stubborn 2: the job ($jobpid) still runs past its deadline"

# A cancel reaches a job whose supervisor was killed.
d="$T/cancel"
mkdir -p "$d"
mkfifo "$d/fifo"
node_cmd alpha jsd-submit --id cancel-1 -p "FIFO=$d/fifo" -p "MARK=$d/mark" beta two > "$d/out" 2> "$d/err" &
sub=$!
wait_until "the job to cancel printed its first line" has_lines "$d/out" 1
kill_sup || fail "no job supervisor to kill"
node_cmd alpha jsd-submit --cancel cancel-1 beta > "$d/cancel.out" 2>&1 || fail "cancel of an orphaned job: $(cat "$d/cancel.out")"
rc=0
wait "$sub" 2>/dev/null || rc=$?
[ "$rc" = 143 ] || fail "the cancelled job's jsd-submit exited $rc, not 143: $(cat "$d/err")"
[ "$(record_state cancel-1)" = cancelled ] || fail "cancel: state $(record_state cancel-1), not cancelled"
[ -e "$d/mark" ] && fail "the cancelled job ran to its end"

# A listener stopped (SIGTERM) while its supervisor hangs: it stops anyway,
# after the jobs' grace, killing them itself (it waited for ever); the
# supervisor, once it goes on, writes the end, which the restarted
# listener reads: killed, never a false end.
d="$T/hangstop"
mkdir -p "$d"
mkfifo "$d/fifo"
node_cmd alpha jsd-submit --no-wait --id hangstop-1 -p "FIFO=$d/fifo" -p "MARK=$d/mark" beta two >/dev/null ||
  fail "hangstop: not queued"
wait_until "the job to stop runs" [ "$(record_state hangstop-1)" = running ]
p=$(sup_pid) || fail "no job supervisor on beta"
kill -STOP "$p"
kill -TERM "${NODE_PID[beta]}"
wait "${NODE_PID[beta]}"
unset "NODE_PID[beta]"
grep -q "the job supervisor does not answer: 1 job(s) killed without it" "$T/beta.log" ||
  fail "hangstop: no line for the hung supervisor"
kill -CONT "$p"
start_node beta
wait_until "hangstop-1 has its end" is_finished hangstop-1
[ "$(record_state hangstop-1)" = killed ] || fail "hangstop: state $(record_state hangstop-1), not killed"
[ -e "$d/mark" ] && fail "the stopped job ran to its end"

# With no job left, a listener's job supervisor ends with it.
stop_node alpha
stop_node beta
no_supervisor() { [ "$(sup_count)" = 0 ]; }
wait_until "the job supervisors ended with their listeners" no_supervisor
log "matrix: $CASES cases x $RUNS runs, and $BATCH --no-wait batches of 20: no job lost or run twice, no wrong status, no line lost or doubled"
pass
