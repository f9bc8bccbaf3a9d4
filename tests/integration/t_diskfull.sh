# A full state directory on the running node (issue 19): beta answers
# "accepted" only once a durable record is on disk, and refuses (a refusal
# alpha keeps) when it cannot write it; the id stays usable. A job whose
# end cannot be written is never recorded with a false end. Root only: the
# state directory is a small tmpfs filled to the last byte.
source "$JSD_TEST_LIB"
[ "$(id -u)" = 0 ] || skip "needs root (mounts a tmpfs)"
JOBS='"jobs": {"mark": {"command": ["/bin/sh", "-c", "echo \"$JSD_JOB_ID\" >> '"$T"'/ran; echo marked"]},
  "hold": {"command": ["/bin/sh", "-c", "echo started; read x < '"$T"'/go; echo done; exit 3"]}}'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
mkdir -p "$T/beta/state"
mount -t tmpfs -o size=4m,mode=0700 jsd-test "$T/beta/state" || skip "cannot mount a tmpfs"
CLEANUP_HOOKS+=("umount -l '$T/beta/state' 2>/dev/null")
mkfifo "$T/go"
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -W 10 -q beta > /dev/null || fail "alpha -> beta"
ran() { [ -e "$T/ran" ] && grep -qx "$1" "$T/ran"; }
fill() { dd if=/dev/zero of="$T/beta/state/filler" bs=4k 2>/dev/null; sync; }
unfill() { rm -f "$T/beta/state/filler"; }

# A job that runs while the disk fills, and ends on a full disk.
node_cmd alpha jsd-submit --id hold-1 beta hold > "$T/hold.out" 2> "$T/hold.err" &
hold=$!
wait_until "hold-1 runs" grep -q started "$T/hold.out"
fill

# A durable submission to a full disk: refused, the refusal kept by alpha
# (out of its outbox), nothing run; --status says why.
node_cmd alpha jsd-submit --no-wait --id full-1 beta mark > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "--no-wait to a full disk: expected 255, got $rc ($(cat "$T/out" "$T/err"))"
grep -q "^jsd-submit: error: cannot accept job full-1 on beta: its record cannot be written" "$T/err" ||
  fail "--no-wait to a full disk: $(cat "$T/err")"
[ -e "$T/alpha/state/outbox/full-1.json" ] && fail "a refused submission is still in the outbox"
[ -e "$T/alpha/state/outbox/refused/full-1.json" ] || fail "no refusal record kept for full-1"
# A waiting one cannot start: 255, one line, no "cannot start cannot".
node_cmd alpha jsd-submit --id full-2 beta mark > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "waiting submission to a full disk: expected 255, got $rc ($(cat "$T/out" "$T/err"))"
grep -q "^jsd-submit: beta: cannot start the job: cannot write .*No space left on device" "$T/err" ||
  fail "waiting submission to a full disk: $(cat "$T/err")"
ran full-1 && fail "full-1 ran although it was refused"
ran full-2 && fail "full-2 ran although it could not start"

# The held job ends on the full disk: its submitter gets its true status,
# and its record reaches the disk once there is room (no restart needed).
echo > "$T/go"
wait $hold; rc=$?
[ $rc = 3 ] || fail "hold-1 on a full disk: expected its status 3, got $rc ($(cat "$T/hold.err"))"
node_cmd alpha jsd-submit --status hold-1 beta > "$T/out" || fail "--status hold-1: $(cat "$T/out")"
grep -q "exited, exit status 3" "$T/out" || fail "hold-1's record in memory: $(cat "$T/out")"
grep -q '"state":"exited"' "$T/beta/state/jobs/hold-1.json" 2>/dev/null && fail "hold-1's record was written on a full disk?"
unfill
wait_until "hold-1's record is written once there is room" grep -q '"state":"exited"' "$T/beta/state/jobs/hold-1.json"
# The refused id is free: it runs now, once.
node_cmd alpha jsd-submit -q --id full-1 beta mark > /dev/null || fail "full-1 after the disk has room"
[ "$(grep -cx full-1 "$T/ran")" = 1 ] || fail "full-1 ran $(grep -cx full-1 "$T/ran") times"

# A job that ends while the disk is full and the node stops before there is
# room for its record: never a false end. Its supervisor appends the end to
# the job's job.json, into the page that file already has (no new block),
# so the restarted node finds the true end there (exit status 3); were
# there no room even for that, the end would be unknown (254, "not written
# down").
node_cmd alpha jsd-submit --id hold-2 beta hold > "$T/hold.out" 2> "$T/hold.err" &
hold=$!
wait_until "hold-2 runs" grep -q started "$T/hold.out"
fill
echo > "$T/go"
wait $hold; rc=$?
[ $rc = 3 ] || fail "hold-2 on a full disk: expected its status 3, got $rc ($(cat "$T/hold.err"))"
grep -q '"state":"exited"' "$T/beta/state/jobs/hold-2.json" 2>/dev/null && fail "hold-2's record was written on a full disk?"
stop_node beta
unfill
start_node beta
node_cmd alpha jsd-submit --status hold-2 beta > "$T/out"; rc=$?
grep -q "exited, exit status 3" "$T/out" || fail "hold-2 after a restart: $rc $(cat "$T/out")"
node_cmd alpha jsd-submit --status hold-1 beta > "$T/out"
grep -q "exited, exit status 3" "$T/out" || fail "hold-1 after the restart: $(cat "$T/out")"
pass
