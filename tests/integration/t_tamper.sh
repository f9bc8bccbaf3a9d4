# A man in the middle (tests/integration/tamper_proxy.py) between alpha and
# beta: a replayed handshake message 1 is refused and leaves alpha's link alone; one bit
# flipped anywhere in a handshake closes that attempt and the link comes
# back; one bit flipped in a transport frame closes the link, it comes
# back, and every submission runs exactly once with the right result.
source "$JSD_TEST_LIB"
start_tamper_proxy

MARK='"jobs": {"mark": {"command": ["/bin/sh", "-c", "echo $JSD_PARAM_K >> '"$T"'/marks; echo ok-$JSD_PARAM_K"]}}'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.20:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "\"port_range\": [56000, 56009], \"handshake_timeout_ms\": 1000, $MARK"
start_node alpha
start_node beta

# 1. Replay: record alpha's first handshake, then send its message 1 again.
rid=$(ctl '{"op":"record","port":"node","conn":1}' | field id)
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta through the proxy failed"
m1=$(ctl "{\"op\":\"get\",\"id\":$rid}" | "$PY" -c 'import json,sys; print(next(f["hex"] for f in json.load(sys.stdin)["frames"] if f["dir"]=="c2s"))')
qs_before=$(child_named "${NODE_PID[beta]}" QueueServer_alpha)
[ -n "$qs_before" ] || fail "no QueueServer_alpha"
allowed_before=$(grep -c '"what":"link".*"verdict":"allowed"' "$T/beta/state/audit.log")
ctl "{\"op\":\"replay\",\"port\":4455,\"frames_hex\":[\"$m1\"],\"read_frames\":1}" > "$T/replay.out"
# 52 is 'R': refused at once (its time is not later than alpha's last; t_replay has more).
grep -q '"frames_hex": \["[0-9a-f]\{8\}52' "$T/replay.out" || fail "beta did not refuse the replayed message 1: $(cat "$T/replay.out")"
wait_until "beta logs the replay" grep -q "('alpha'): replayed handshake" "$T/beta.log"
grep -q "no authenticated link from alpha within" "$T/beta.log" && fail "a replay got a queue-server"
[ "$(child_named "${NODE_PID[beta]}" QueueServer_alpha)" = "$qs_before" ] || fail "alpha's queue-server changed after a replay"
grep -q "replacing QueueServer_alpha" "$T/beta.log" && fail "a replayed message 1 replaced alpha's queue-server"
[ "$(grep -c '"what":"link".*"verdict":"allowed"' "$T/beta/state/audit.log")" = "$allowed_before" ] || fail "a replay left an 'allowed' audit line"
node_cmd alpha jsd-ping -c 3 -i 0.01 -q beta >/dev/null || fail "alpha's pings failed after the replay"

# 2. One bit flipped in a handshake message, at offsets over the whole
# message, each way: that attempt fails (the tool may say so: 255), the
# next one makes the link again.
handshake_case() {  # DIR OFFSET
  ctl "{\"op\":\"rule\",\"dir\":\"$1\",\"port\":\"node\",\"conn\":1,\"frame\":0,\"action\":\"flip\",\"offset\":$2}" >/dev/null
  ctl '{"op":"cut"}' >/dev/null
  node_cmd alpha jsd-ping -c 1 -W 10 -q beta >/dev/null 2>&1
  ctl '{"op":"clear"}' >/dev/null
  wait_until "the link is back after a flip at $1 $2" node_cmd alpha jsd-ping -c 1 -W 2 -q beta
}
n=0
for off in 0 3 4 5 20 36 40 60 80 84 100 120 140 150 -1; do handshake_case c2s "$off"; n=$((n + 1)); done
for off in 0 3 4 5 20 36 40 52 60 70 -1; do handshake_case s2c "$off"; n=$((n + 1)); done

# 3. One bit flipped in a transport frame (the ticket and the events; the
# acks and answers): the link closes and comes back; each submission ends
# with its own result and runs exactly once.
k=0
transport_case() {  # DIR FRAME OFFSET
  k=$((k + 1))
  rule=$(ctl "{\"op\":\"rule\",\"dir\":\"$1\",\"port\":\"link\",\"conn\":1,\"frame\":$2,\"action\":\"flip\",\"offset\":$3}" | field id)
  ctl '{"op":"cut"}' >/dev/null
  out=$(node_cmd alpha jsd-submit --timeout 30 -p K=$k beta mark 2>"$T/err"); rc=$?
  [ $rc = 0 ] && [ "$out" = "ok-$k" ] || fail "submission $k (flip $1 frame $2 offset $3): exit $rc, output '$out' ($(cat "$T/err"))"
  # A later frame (an ack, a heartbeat's answer) may come after the job's
  # end: the flip lands then, and the link must come back all the same.
  ctl "{\"op\":\"wait\",\"id\":$rule,\"timeout\":10}" | grep -q '"done": true' || fail "flip $1 frame $2 offset $3 never landed"
  ctl '{"op":"clear"}' >/dev/null
}
for f in 0 1 2; do
  # (The smallest sealed frame, a lone heartbeat, is 25 bytes long.)
  for off in 0 4 9 17 24 -17 -1; do transport_case c2s "$f" "$off"; done
done
for f in 0 1 2; do
  for off in 4 9 20 -1; do transport_case s2c "$f" "$off"; done
done
# 4. JSD_TAMPER_FULL=1 (not in make check: about 5 minutes): 100 flips
# each way over the handshake and the first transport frames, each with a
# submission: it runs once (exit 0), or it did not run and never will
# (255), or jsd says it cannot know (254); no altered job runs.
h=0 h_ok=0 h_255=0 h_254=0
: > "$T/not_run"
flip_submit() {  # DIR PORT FRAME OFFSET
  h=$((h + 1))
  rule=$(ctl "{\"op\":\"rule\",\"dir\":\"$1\",\"port\":\"$2\",\"conn\":1,\"frame\":$3,\"action\":\"flip\",\"offset\":$4}" | field id)
  ctl '{"op":"cut"}' >/dev/null
  out=$(node_cmd alpha jsd-submit --timeout 10 -p K=h$h beta mark 2>"$T/err"); rc=$?
  # A later link frame (an ack, a heartbeat's answer) may come after the
  # job's end: wait for the flip to land.
  ctl "{\"op\":\"wait\",\"id\":$rule,\"timeout\":10}" | grep -q '"done": true' || fail "flip $* never landed"
  case $rc in
    0) [ "$out" = "ok-h$h" ] || fail "flip $*: exit 0 with output '$out'"; h_ok=$((h_ok + 1)) ;;
    255) echo "h$h" >> "$T/not_run"; h_255=$((h_255 + 1)) ;;
    254) h_254=$((h_254 + 1)) ;;
    *) fail "flip $*: exit $rc ($(cat "$T/err"))" ;;
  esac
  ctl '{"op":"clear"}' >/dev/null
  wait_until "the link is back after a flip at $*" node_cmd alpha jsd-ping -c 1 -W 2 -q beta
}
if [ "${JSD_TAMPER_FULL:-}" = 1 ]; then
  for off in $(seq 0 3 147); do flip_submit c2s node 0 "$off"; done   # 50 in message 1
  for f in 0 1; do for off in $(seq 0 24); do flip_submit c2s link "$f" "$off"; done; done  # 50
  for off in $(seq 0 2 70); do flip_submit s2c node 0 "$off"; done    # 36 in the answer
  for f in 0 1; do for off in $(seq 0 24); do flip_submit s2c link "$f" "$off"; done; done  # 50
  for off in $(seq 0 13); do flip_submit s2c link 2 "$off"; done     # 14
fi
# Every rule hit a frame that was there: none of the cases was a no-op.
applied=$(ctl '{"op":"stats"}' | "$PY" -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["rules_fired"] if r.get("applied")))')
[ "$applied" = $((n + k + h)) ] || fail "only $applied of $((n + k + h)) flips landed on a frame"
wait_until "the link is back after the last flip" node_cmd alpha jsd-ping -c 1 -W 2 -q beta
sort "$T/marks" | uniq -d | grep -q . && fail "a job ran twice: $(sort "$T/marks" | uniq -d | tr '\n' ' ')"
while read -r id; do grep -qx "$id" "$T/marks" && fail "job $id ran after its submitter exited 255 (not run)"; done < "$T/not_run"
runs=$(wc -l < "$T/marks")
[ "$runs" -ge $((k + h_ok)) ] && [ "$runs" -le $((k + h_ok + h_254)) ] || fail "expected $((k + h_ok)) to $((k + h_ok + h_254)) runs, got $runs"
grep -q "Sanitizer\|Assertion" "$T"/*.log && fail "a daemon reported an error"
kill -0 "${NODE_PID[beta]}" && kill -0 "${NODE_PID[alpha]}" || fail "a listener died"
full=""
[ $h -gt 0 ] && full="; full: $h flips with a submission: $h_ok ran once, $h_255 not run (exit 255, none ran later), $h_254 unknown (254)"
pass "replay refused; $n handshake flips recovered; $k transport flips, $k runs, 0 twice$full"
