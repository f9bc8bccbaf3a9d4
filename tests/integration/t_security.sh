# A node with the wrong key, and one not in peers, are refused and get no
# queue-server; garbage, a bad handshake and an oversized frame on the node
# port leave the listener serving; the control socket is private.
source "$JSD_TEST_LIB"
gen_key "$T/other.key"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
# A handshake timeout far above the 1 s first-message deadline: a silent
# connection closed after 1 s was closed by that deadline and nothing else.
# (Debug: every refusal is in the log, not only the first 8 of 10 s.)
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455"}' '"handshake_timeout_ms": 600000, "log_level": "debug"'
# gamma is in beta's peers but holds another key.
make_node gamma 127.0.0.4 "$T/other.key" '{"beta":"127.0.0.3:4455"}'
start_node alpha
start_node beta
start_node gamma

node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta failed"

# Wrong key: refused with one clear line, exit 255, no QueueServer_gamma.
node_cmd gamma jsd-ping -c 1 -W 10 beta > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "wrong key: expected 255, got $rc ($(cat "$T/err"))"
grep -q "^jsd-ping: error: beta refused the link: key not known for gamma" "$T/err" || fail "unclear error: $(cat "$T/err")"
wait_until "beta logs the refusal" grep -q "refused 127.0.0.4:[0-9]* ('gamma'): key not known for gamma (key b2:" "$T/beta.log"
[ -z "$(procs QueueServer_gamma)" ] || fail "a queue-server was started for gamma: $(procs QueueServer_gamma)"

# Not in peers: delta (with its own key) is refused by alpha.
stop_node gamma
make_node delta 127.0.0.4 - '{"alpha":"127.0.0.2:4455"}'
start_node delta
node_cmd delta jsd-ping -c 1 -W 10 alpha > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "not in peers: expected 255, got $rc"
grep -q "^jsd-ping: error: alpha refused the link: key not known for delta (not in peers)" "$T/err" || fail "unclear error: $(cat "$T/err")"
wait_until "alpha logs the refusal" grep -q "refused 127.0.0.4:[0-9]* ('delta'): key not known for delta" "$T/alpha.log"
[ -z "$(procs QueueServer_delta)" ] || fail "a queue-server was started for delta"
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta after the refusals"

# Garbage, a malformed hello, an oversized frame, a silent connection: each
# closes only that connection.
printf 'GET / HTTP/1.0\r\n\r\n' > /dev/tcp/127.0.0.3/4455
printf '\x00\x00\x00\x05hello' > /dev/tcp/127.0.0.3/4455
printf '\x7f\xff\xff\xff' > /dev/tcp/127.0.0.3/4455
# The pre-authentication read limit, 8192 bytes: one more is refused unread;
# a frame of exactly 8192 is read (and refused for what it says).
printf '\x00\x00\x20\x01' > /dev/tcp/127.0.0.3/4455
{ printf '\x00\x00\x20\x00I\x04'; head -c 8190 /dev/zero; } > /dev/tcp/127.0.0.3/4455
head -c 100000 /dev/urandom > /dev/tcp/127.0.0.3/4455
exec 7<>/dev/tcp/127.0.0.3/4455  # says nothing: the handshake times out, later
node_cmd alpha jsd-ping -c 2 -i 0.01 -q beta >/dev/null || fail "beta stopped serving after bad input"
# (Those connections and the ping are handled in any order: wait for the lines.)
wait_until "beta logs the oversized frame" grep -q "frame of 2147483647 bytes exceeds the limit" "$T/beta.log"
wait_until "beta refuses a frame one byte over the pre-authentication limit" \
  grep -q "handshake from 127.0.0.1:[0-9]* failed: frame of 8193 bytes exceeds the limit" "$T/beta.log"
wait_until "beta reads a frame at the pre-authentication limit" \
  grep -q "refused 127.0.0.1:[0-9]*: unknown handshake flags" "$T/beta.log"
wait_until "beta logs the malformed hello" grep -q "handshake from 127.0.0.1:[0-9]* failed: unexpected handshake message" "$T/beta.log"
kill -0 "${NODE_PID[beta]}" || fail "beta's listener died"
# The silent connection: closed by beta (end of file here) at the 1 s
# first-message deadline, not at the 600 s handshake timeout.
timeout 20 cat <&7 >/dev/null || fail "the silent connection was not closed by beta"
exec 7>&-
deadline=$(sed -n 's/.*handshake from 127.0.0.1:[0-9]* timed out after \([0-9]*\) ms.*/\1/p' "$T/beta.log" | head -1)
[ "$deadline" = 1000 ] || fail "the silent connection was closed after '$deadline' ms, not at the 1000 ms first-message deadline"

# Local control socket: only the node's user.
st=$(stat -c %a "$T/beta/state/control.sock")
[ "$st" = 600 ] || fail "control socket mode is $st"
st=$(stat -c %a "$T/beta/state")
[ "$st" = 700 ] || fail "state dir mode is $st"

# No secret in argv or logs.
for k in "$T"/keys/*.key; do
  key=$(cat "$k")
  grep -qF -- "$key" "$T"/*.log && fail "a private key appears in a log"
  pgrep -f -- "$key" >/dev/null && fail "a private key appears in a command line"
done
pass "wrong key and unknown peer refused; a frame of 8193 bytes refused before authentication, 8192 read; a silent connection closed at the $deadline ms first-message deadline"
