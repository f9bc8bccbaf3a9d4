# A replayed handshake message 1 costs nothing (issue 20): alpha's first
# message to beta is recorded by a proxy and sent again 50 times from
# another address. Beta refuses every replay before it binds a port or
# starts a process (the hello's time is not later than the latest it has
# from alpha), says so in one log line, starts no QueueServer_alpha, and
# alpha's submissions go on; after a restart of beta the replays are still
# refused (STATE_DIR/handshake-times) while alpha links again.
source "$JSD_TEST_LIB"
start_tamper_proxy

J='"jobs": {"hello": {"command": ["/bin/echo", "hello"]}}'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.20:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "\"port_range\": [56000, 56009], $J"
start_node alpha
start_node beta

rid=$(ctl '{"op":"record","port":"node","conn":1}' | field id) || fail "proxy record failed"
node_cmd alpha jsd-submit beta hello >/dev/null || fail "alpha -> beta through the proxy failed"
m1=$(ctl "{\"op\":\"get\",\"id\":$rid}" |
  "$PY" -c 'import json,sys; print(next(f["hex"] for f in json.load(sys.stdin)["frames"] if f["dir"]=="c2s"))') ||
  fail "no message 1 recorded"
[ "${m1:8:2}" = 49 ] || fail "the recorded message 1 is not an IK message 1 ('I'): ${m1:0:16}"

# Beta's QueueServer_alpha processes, found among the listener's children.
qs_of_beta() {
  local p
  for p in $(children_of "${NODE_PID[beta]}"); do
    ps -o args= -p "$p" 2>/dev/null | grep -q '^QueueServer_alpha\( \|$\)' && echo "$p"
  done
}
qs_before=$(qs_of_beta)
[ "$(echo "$qs_before" | wc -w)" = 1 ] || fail "expected one QueueServer_alpha before the replays: '$qs_before'"

# replay N: sends message 1 N times from 127.0.0.22, each on its own
# connection, and prints how many were answered with a refusal ('R'; a
# replay used to get 'A' and a port).
replay() {
  "$PY" - "$1" "$m1" > "$T/replay.out" <<'PY' || fail "the replays failed: $(tail -3 "$T/replay.out")"
import socket, struct, sys
n, m1 = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
def read(s, k):
    b = b""
    while len(b) < k:
        c = s.recv(k - len(b))
        if not c:
            return None
        b += c
    return b
refused = 0
for i in range(n):
    s = socket.create_connection(("127.0.0.3", 4455), timeout=20, source_address=("127.0.0.22", 0))
    s.sendall(m1)
    h = read(s, 4)
    p = read(s, struct.unpack(">I", h)[0]) if h else None
    s.close()
    if p and p[:1] == b"R":
        refused += 1
    else:
        print("answer %d: %r" % (i, p[:40] if p else p), file=sys.stderr)
print(refused)
PY
  cat "$T/replay.out"
}
passed_by_replays() { grep -c "alpha (127.0.0.22:[0-9]*,.*passed the handshake" "$T/beta.log"; }
n=50
refused=$(replay $n)
[ "$refused" = $n ] || fail "$refused of $n replays refused"
qs_after=$(qs_of_beta)
spawned=$(passed_by_replays)
[ "$spawned" = 0 ] || fail "$spawned replays passed the handshake and got a QueueServer_alpha"
[ "$qs_after" = "$qs_before" ] || fail "beta's QueueServer_alpha processes changed: '$qs_before' -> '$qs_after'"
lines=$(grep -c "refused 127.0.0.22:[0-9]* ('alpha'): replayed handshake" "$T/beta.log")
[ "$lines" = 1 ] || fail "expected one log line for $n replays, got $lines"
grep -q '127.0.0.22' "$T/beta/state/audit.log" && fail "a replay left an audit line"
for i in 1 2 3 4 5 6; do
  node_cmd alpha jsd-submit beta hello >/dev/null || fail "alpha's submission $i after the replays failed"
done

# A restart of beta does not reopen the window; alpha's fresh hello passes.
[ -s "$T/beta/state/handshake-times" ] || fail "beta kept no handshake times"
stop_node beta
start_node beta
refused2=$(replay 10)
[ "$refused2" = 10 ] || fail "after a restart, $refused2 of 10 replays refused"
spawned2=$(( $(passed_by_replays) - spawned ))
[ "$spawned2" = 0 ] || fail "after a restart, $spawned2 replays got a QueueServer_alpha"
node_cmd alpha jsd-submit beta hello >/dev/null || fail "alpha -> beta after beta's restart failed"
[ "$(qs_of_beta | wc -w)" = 1 ] || fail "expected one QueueServer_alpha after beta's restart: '$(qs_of_beta)'"
pass "$refused of $n replays refused, $spawned queue-servers started, $lines log line; after a restart $refused2 of 10 refused, $spawned2 started; alpha's 8 submissions ran"
