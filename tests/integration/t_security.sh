# A node with the wrong key, and one not in peers, are refused and get no
# queue-server; garbage, a bad handshake and an oversized frame on the node
# port leave the listener serving; the control socket is private.
source "$JSD_TEST_LIB"
gen_key "$T/cluster.key"
gen_key "$T/other.key"
make_node alpha 127.0.0.2 "$T/cluster.key" '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 "$T/cluster.key" '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455"}'
# gamma is in beta's peers but holds another key.
make_node gamma 127.0.0.4 "$T/other.key" '{"beta":"127.0.0.3:4455"}'
start_node alpha
start_node beta
start_node gamma

node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta failed"

# Wrong key: refused with one clear line, exit 255, no QueueServer_gamma.
node_cmd gamma jsd-ping -c 1 -W 10 beta > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "wrong key: expected 255, got $rc ($(cat "$T/err"))"
grep -q "^jsd-ping: error: beta refused the link: .*does not hold our key" "$T/err" || fail "unclear error: $(cat "$T/err")"
grep -q "handshake from 127.0.0.4:[0-9]* ('gamma') failed" "$T/beta.log" || fail "beta did not log the failed handshake"
[ -z "$(procs QueueServer_gamma)" ] || fail "a queue-server was started for gamma: $(procs QueueServer_gamma)"
# A server-side check too: a client that sends a forged proof.
python3 - "$T/beta.log" <<'PY' || fail "forged proof was not refused"
import json, os, socket, struct, sys
s = socket.create_connection(("127.0.0.3", 4455), timeout=10)
def send(o):
    b = json.dumps(o).encode(); s.sendall(struct.pack(">I", len(b)) + b)
def recv():
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    return json.loads(s.recv(n, socket.MSG_WAITALL))
send({"t": "hello", "v": 1, "node": "alpha", "addr": "127.0.0.2:4455", "nonce": os.urandom(32).hex()})
ch = recv(); assert ch["t"] == "challenge", ch
send({"t": "proof", "mac": "00" * 32})
r = recv(); assert r["t"] == "refused" and "authentication failed" in r["reason"], r
PY
grep -q "refused 127.0.0.1:[0-9]* ('alpha'): authentication failed" "$T/beta.log" || fail "forged proof not logged"

# Not in peers: delta (with the right key) is refused by alpha.
stop_node gamma
make_node delta 127.0.0.4 "$T/cluster.key" '{"alpha":"127.0.0.2:4455"}'
start_node delta
node_cmd delta jsd-ping -c 1 -W 10 alpha > /dev/null 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "not in peers: expected 255, got $rc"
grep -q "^jsd-ping: error: alpha refused the link: refused: node 'delta' is not in peers of alpha" "$T/err" || fail "unclear error: $(cat "$T/err")"
grep -q "refused 127.0.0.4:[0-9]* ('delta'): not in peers" "$T/alpha.log" || fail "alpha did not log the refusal"
[ -z "$(procs QueueServer_delta)" ] || fail "a queue-server was started for delta"

# allow_unknown_peers: beta (restarted with it) accepts epsilon, which it
# does not know, and links back to the address epsilon announced.
stop_node beta
make_node beta 127.0.0.3 "$T/cluster.key" '{"alpha":"127.0.0.2:4455","gamma":"127.0.0.4:4455"}' '"allow_unknown_peers": true'
start_node beta
make_node epsilon 127.0.0.5 "$T/cluster.key" '{"beta":"127.0.0.3:4455"}'
start_node epsilon
node_cmd epsilon jsd-ping -c 2 -i 0.01 -q beta >/dev/null || fail "an unknown peer was refused despite allow_unknown_peers"
[ "$(link_state beta epsilon in)" = up ] || fail "beta has no link from epsilon"
[ -n "$(procs "QueueClient_127.0.0.5:4455")" ] || fail "beta did not link back to epsilon's address"
# A hello without a proof must not repoint epsilon's address.
python3 - <<'PY' || fail "forged hello not answered as expected"
import json, os, socket, struct
s = socket.create_connection(("127.0.0.3", 4455), timeout=10)
b = json.dumps({"t": "hello", "v": 1, "node": "epsilon", "addr": "127.0.0.9:1", "nonce": os.urandom(32).hex()}).encode()
s.sendall(struct.pack(">I", len(b)) + b)
n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
assert json.loads(s.recv(n, socket.MSG_WAITALL))["t"] == "challenge"
s.close()
PY
node_cmd epsilon jsd-ping -c 1 -W 10 -q beta >/dev/null || fail "an unauthenticated hello repointed epsilon's address"
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta after beta's restart"

# Garbage, a malformed hello, an oversized frame, a silent connection: each
# closes only that connection.
printf 'GET / HTTP/1.0\r\n\r\n' > /dev/tcp/127.0.0.3/4455
printf '\x00\x00\x00\x05hello' > /dev/tcp/127.0.0.3/4455
printf '\x7f\xff\xff\xff' > /dev/tcp/127.0.0.3/4455
head -c 100000 /dev/urandom > /dev/tcp/127.0.0.3/4455
exec 7<>/dev/tcp/127.0.0.3/4455  # says nothing: the handshake times out, later
node_cmd alpha jsd-ping -c 2 -i 0.01 -q beta >/dev/null || fail "beta stopped serving after bad input"
grep -q "exceeds the limit" "$T/beta.log" || fail "oversized frame not logged"
grep -q "malformed handshake message" "$T/beta.log" || fail "malformed hello not logged"
kill -0 "${NODE_PID[beta]}" || fail "beta's listener died"
exec 7>&-

# Local control socket: only the node's user.
st=$(stat -c %a "$T/beta/state/control.sock")
[ "$st" = 600 ] || fail "control socket mode is $st"
st=$(stat -c %a "$T/beta/state")
[ "$st" = 700 ] || fail "state dir mode is $st"

# No secret in argv or logs.
key=$(cat "$T/cluster.key")
grep -q "$key" "$T"/*.log && fail "the key appears in a log"
pgrep -f -- "$key" >/dev/null && fail "the key appears in a command line"
pass
