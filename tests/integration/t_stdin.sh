# Standard input to jobs (jsd-submit -i): byte-exact to one node (200 MiB)
# and to a set, from a file and from a pipe; without -i the job's stdin is
# /dev/null and the submitter's is left unread; a job that never reads
# holds its submitter at its window (small RSS, input paused) until it is
# cancelled; a link broken mid-input cuts the input (the job is stopped,
# never sees an end of input, its record says why; a node's listener
# killed mid-input: its supervisor kills the job); -i to a job without
# "stdin": true is refused with 255 and nothing runs; --attach sends none.
source "$JSD_TEST_LIB"
JOBS=$(cat <<'EOJ'
"jobs": {
    "sum":     { "command": ["/bin/sh", "-c", "sha256sum | cut -d' ' -f1"], "stdin": true },
    "keep":    { "command": ["/bin/sh", "-c", "cat > \"$JSD_PARAM_OUT\" && touch \"$JSD_PARAM_OUT.eof\""], "stdin": true },
    "sleeper": { "command": ["/bin/sleep", "60"], "stdin": true },
    "noinput": { "command": ["/bin/sh", "-c", "touch \"$JSD_PARAM_DIR/noinput.ran\"; cat; echo end"] }
  }
EOJ
)
ALL='"alpha":"127.0.0.2:4455","beta":"127.0.0.3:4455","gamma":"127.0.0.4:4455","delta":"127.0.0.5:4455"'
peers_of() { echo "{$ALL}" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop(sys.argv[1]); print(json.dumps(d))' "$1"; }
make_node alpha 127.0.0.2 - "$(peers_of alpha)"
i=3
for n in beta gamma delta; do
  make_node $n 127.0.0.$i - "$(peers_of $n)" "$JOBS"
  i=$((i + 1))
done
for n in alpha beta gamma delta; do start_node $n; done
sub() { JSD_CONFIG="$T/alpha.json" jsd-submit "$@"; }
status_of() { JSD_CONFIG="$T/alpha.json" jsd-submit --status "$1" "$2" --json; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }

# 200 MiB of random bytes to one node: the same sha256 there.
head -c $((200 << 20)) /dev/urandom > "$T/big" || fail "cannot make the input file"
want=$(sha256sum < "$T/big" | cut -d' ' -f1)
got=$(sub -q -i beta sum < "$T/big") || fail "200 MiB to beta: rc $?"
[ "$got" = "$want" ] || fail "200 MiB to beta: sha256 $got, sent $want"
rm -f "$T/big"

# From a pipe, and to a set: the same bytes to every node.
head -c $((8 << 20)) /dev/urandom > "$T/mid"
want=$(sha256sum < "$T/mid" | cut -d' ' -f1)
got=$(cat "$T/mid" | sub -q -i beta sum) || fail "from a pipe: rc $?"
[ "$got" = "$want" ] || fail "from a pipe: sha256 $got, sent $want"
sub -q -i beta,gamma,delta sum < "$T/mid" > "$T/out" 2> "$T/err" || fail "to a set: rc $?: $(cat "$T/err")"
[ "$(sort "$T/out")" = "$(printf 'beta: %s\ndelta: %s\ngamma: %s' "$want" "$want" "$want")" ] ||
  fail "to a set: $(cat "$T/out")"
# Empty input: the job sees the end at once.
got=$(sub -q -i beta sum < /dev/null) || fail "empty input: rc $?"
[ "$got" = "$(sha256sum < /dev/null | cut -d' ' -f1)" ] || fail "empty input: $got"

# Without -i the job's stdin is /dev/null, and ours is not eaten: a while-read
# loop around jsd-submit sees every line.
lines=$(printf 'one\ntwo\n' | while read -r l; do sub -q beta noinput -p DIR="$T" > /dev/null || exit 1; echo "$l"; done)
[ "$lines" = "$(printf 'one\ntwo')" ] || fail "without -i the submitter's stdin was read: '$lines'"
[ "$(printf 'x\n' | sub -q beta noinput -p DIR="$T")" = end ] || fail "without -i the job read something"
rm -f "$T/noinput.ran"

# -i to a job that takes no input: one line, 255, nothing run.
printf 'data\n' | sub -i beta noinput -p DIR="$T" > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "-i to noinput: rc $rc, want 255"
[ "$(wc -l < "$T/err")" = 1 ] && grep -q 'takes no input' "$T/err" || fail "-i to noinput said: $(cat "$T/err")"
[ ! -e "$T/noinput.ran" ] || fail "-i to noinput ran the job"
sub -i --attach x beta < /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -q -- '-i streams input' "$T/err" || fail "-i --attach: rc $rc: $(cat "$T/err")"

# A job that never reads: its submitter reads no further than its window
# (the input file's offset stops), stays small, and ends when the job is
# cancelled.
head -c $((64 << 20)) /dev/zero > "$T/zero"
sub -i --id never beta sleeper < "$T/zero" > /dev/null 2> "$T/never.err" &
spid=$!
pos() { awk '/^pos:/ {print $2}' /proc/$spid/fdinfo/0 2>/dev/null; }
read_some() { [ "$(pos)" -gt 0 ] 2>/dev/null; }
wait_until "the submitter read some input" read_some
# Its offset stops moving: the same twice, 0.2 s apart.
stable() {
  local a b
  a=$(pos); sleep 0.2; b=$(pos)
  [ -n "$a" ] && [ "$a" = "$b" ]
}
wait_until "the submitter paused its input" stable
p=$(pos)
[ "$p" -le $((8 << 20)) ] || fail "a job that never reads: the submitter read $p bytes (window 4 MiB)"
rss=$(awk '/^VmRSS:/ {print $2}' /proc/$spid/status)
[ "$rss" -lt 65536 ] || fail "a job that never reads: the submitter's RSS is $rss KiB"
sub --cancel never beta > /dev/null 2>&1 || fail "cannot cancel the job that never reads"
wait $spid; rc=$?
[ $rc = 143 ] || fail "the cancelled job's submitter: rc $rc: $(cat "$T/never.err")"
log "a job that never reads: the submitter stopped at $p bytes, RSS $rss KiB"

# --attach sends no input: the job keeps only what its submitter sent.
mkfifo "$T/in"
exec 7<>"$T/in"
sub -q -i --id att beta keep -p OUT="$T/att.out" < "$T/in" > /dev/null 2> "$T/att.err" 7>&- &
apid=$!
printf 'first\n' >&7
wait_until "the job took the first line" grep -qx first "$T/att.out"
printf 'EXTRA\n' | sub --attach att beta > /dev/null 2> "$T/attach.err" 7>&- &
bpid=$!
wait_until "the attach joined" grep -q "attached to job att" "$T/attach.err"
exec 7>&-
wait $apid || fail "the -i submitter: rc $?: $(cat "$T/att.err")"
wait $bpid || fail "the attacher: rc $?: $(cat "$T/attach.err")"
[ "$(cat "$T/att.out")" = first ] || fail "--attach sent input: $(cat "$T/att.out")"
[ -e "$T/att.out.eof" ] || fail "the job did not see the end of its input"
rm -f "$T/in"

# A link broken mid-input: beta's QueueServer_alpha killed while the input
# flows. The submission fails with a line saying the input was cut; the job
# is stopped without seeing an end of input; its record says why.
mkfifo "$T/in"
exec 7<>"$T/in"
sub -i --id cut beta keep -p OUT="$T/cut.out" < "$T/in" > /dev/null 2> "$T/cut.err" 7>&- &
cpid=$!
head -c $((1 << 20)) /dev/urandom >&7
took() { [ "$(stat -c %s "$T/cut.out" 2>/dev/null)" = $((1 << 20)) ]; }
wait_until "the job took 1 MiB" took
qs=$(child_named "${NODE_PID[beta]}" QueueServer_alpha)
[ -n "$qs" ] || fail "no QueueServer_alpha among beta's children"
kill -9 $qs
wait $cpid; rc=$?
exec 7>&-
grep -q "input was cut" "$T/cut.err" || fail "the submitter did not say its input was cut (rc $rc): $(cat "$T/cut.err")"
[ $rc != 0 ] || fail "a cut input: the submission succeeded"
[ ! -e "$T/cut.out.eof" ] || fail "the job whose input was cut saw an end of input"
wait_until "the cut job's record" sh -c "JSD_CONFIG='$T/alpha.json' jsd-submit --status cut beta --json | grep -q cancelled"
status_of cut beta > "$T/cut.json"
[ "$(field state < "$T/cut.json")" = cancelled ] || fail "the cut job: $(cat "$T/cut.json")"
grep -q "input was cut" "$T/cut.json" || fail "the cut job's record does not say why: $(cat "$T/cut.json")"
log "a cut input: rc $rc: $(grep "input was cut" "$T/cut.err")"

# beta's listener killed mid-input: its job supervisor kills the job (its
# input can never be complete), which never sees an end of input; the
# restarted listener finds it killed.
sub -i --id lost beta keep -p OUT="$T/lost.out" < "$T/in" > /dev/null 2> "$T/lost.err" 7>&- &
lpid=$!
exec 7<>"$T/in"
head -c $((1 << 20)) /dev/urandom >&7
took_lost() { [ "$(stat -c %s "$T/lost.out" 2>/dev/null)" = $((1 << 20)) ]; }
wait_until "the job took 1 MiB" took_lost
kill -9 "${NODE_PID[beta]}"
wait "${NODE_PID[beta]}" 2>/dev/null
unset "NODE_PID[beta]"
start_node beta
wait_until "the lost job's record" sh -c "JSD_CONFIG='$T/alpha.json' jsd-submit --status lost beta --json | grep -q '\"signal\": *9'"
[ ! -e "$T/lost.out.eof" ] || fail "the job whose listener died mid-input saw an end of input"
exec 7>&-
wait $lpid; rc=$?
[ $rc != 0 ] || fail "the submission whose node's listener died mid-input succeeded"
log "a listener killed mid-input: the job was killed (signal 9), submitter rc $rc"

pass
