# A stop takes as long as its children need, not a fixed timer: with
# job_kill_grace_s at 60, a listener with no child left, and one with links up and a job running (one that ends on SIGTERM),
# each exits soon after SIGTERM. The bound below is `timeout`'s, an upper
# limit with a generous margin, not a sleep; a listener that sits out the
# grace (it used to log "stopped" and then wait grace + 1 s in epoll_wait
# before exiting), or keeps any timer of seconds, fails it.
source "$JSD_TEST_LIB"
JOBS='"job_kill_grace_s": 60, "jobs": { "sleeper": { "command": ["/bin/sh", "-c", "echo $$ > \"$JSD_PARAM_PIDFILE\"; exec sleep 30"] } }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' "$JOBS"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
make_node gamma 127.0.0.4 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
# exits PID SECONDS: PID has exited within SECONDS (tail returns when it is gone).
exits() { timeout "$2" tail --pid="$1" -s 0.05 -f /dev/null; }
# gamma has no link and no job: no child is left when SIGTERM comes (as for
# a node whose clients all wait to be restarted).
start_node gamma
pid=${NODE_PID[gamma]}
kill -TERM "$pid"
exits "$pid" 4 || fail "gamma (no child left) did not exit within 4 s of SIGTERM (job grace 60 s)"
wait "$pid" || fail "gamma exited with $?"
unset "NODE_PID[gamma]"
grep -q "stopped$" "$T/gamma.log" || fail "gamma did not log stopped"

start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "ping alpha -> beta failed"
node_cmd beta jsd-ping -c 1 -q alpha >/dev/null || fail "ping beta -> alpha failed"
node_cmd beta jsd-submit --no-wait -p PIDFILE="$T/job.pid" alpha sleeper >/dev/null || fail "submit failed"
started() { [ -s "$T/job.pid" ]; }
wait_until "the job runs on alpha" started
job=$(cat "$T/job.pid")

pid=${NODE_PID[alpha]}
kill -TERM "$pid"
exits "$pid" 4 || fail "alpha did not exit within 4 s of SIGTERM (job grace 60 s, its job ends on SIGTERM)"
wait "$pid"
rc=$?
unset "NODE_PID[alpha]"
[ $rc = 0 ] || fail "alpha exited with $rc"
grep -q "stopped$" "$T/alpha.log" || fail "alpha did not log stopped"
! kill -0 "$job" 2>/dev/null || fail "the job ($job) outlived its listener"

# beta with its links to a node that went away and one that is back.
start_node alpha
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "ping after restart failed"
pid=${NODE_PID[beta]}
kill -TERM "$pid"
exits "$pid" 4 || fail "beta did not exit within 4 s of SIGTERM"
wait "$pid"
unset "NODE_PID[beta]"
pass
