# A flood on a queue-server's port while it waits for its peer's ticket
# (issue 13: the queue-server ports, 50000-59999 by default). The tamper
# proxy between alpha and beta holds beta's answer to alpha's handshake,
# the message that carries the port: beta's QueueServer_alpha listens on
# port P and alpha does not know P yet. 2,000 idle and 400 garbage
# connections go to P, and more keep coming while the proxy lets the
# answer go. alpha's link still comes up and a job over it runs; the
# queue-server holds few descriptors, its memory and the node's log stay
# small, nothing crashes, and the link's port is closed once it is up.
source "$JSD_TEST_LIB"
start_tamper_proxy

# A long handshake_timeout_ms: the join window stays open for as long as
# the proxy holds the answer (the queue-server's own deadline for its
# ticket is that long too; a connection on its port still gets one second).
J='"jobs": {"hello": {"command": ["/bin/echo", "hello"]}}'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.20:4455"}' '"handshake_timeout_ms": 30000'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "\"port_range\": [56000, 56009], \"handshake_timeout_ms\": 30000, $J"
start_node alpha
start_node beta

hold=$(ctl '{"op":"rule","dir":"s2c","port":"node","conn":1,"frame":0,"action":"hold"}' | field id)
node_cmd alpha jsd-submit beta hello > "$T/submit.out" 2> "$T/submit.err" &
SUBMIT=$!
CLEANUP_HOOKS+=("kill $SUBMIT 2>/dev/null")
ctl "{\"op\":\"wait\",\"id\":$hold,\"timeout\":20}" | grep -q '"done": true' || fail "alpha's handshake never reached the proxy"
# beta logs the port before it answers.
port=$(sed -n 's/.*alpha (.*) passed the handshake; QueueServer_alpha on port \([0-9]*\).*/\1/p' "$T/beta.log" | tail -n 1)
[ -n "$port" ] || fail "beta did not log the queue-server's port"
qs=$(child_named "${NODE_PID[beta]}" QueueServer_alpha)
[ "$(echo "$qs" | wc -w)" = 1 ] || fail "expected one QueueServer_alpha, found '$qs'"
rss() { awk '/VmRSS/ {print $2}' "/proc/$qs/status"; }
rss0=$(rss)
lines0=$(wc -l < "$T/beta.log")

mkfifo "$T/flood.ready" "$T/flood.stop"
"$PY" - "$port" "$T/flood.ready" "$T/flood.stop" > "$T/flood.count" <<'PY' &
import os, socket, struct, sys, threading
port, ready, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
done = threading.Event()
threading.Thread(target=lambda: (open(stop).read(), done.set()), daemon=True).start()
socks, n = [], [0, 0]

def idle(i):  # a connection that says nothing (connect without waiting)
    s = socket.socket()
    s.setblocking(False)
    s.bind((f"127.0.1.{i % 100 + 1}", 0))
    s.connect_ex(("127.0.0.3", port))
    socks.append(s)
    n[0] += 1

def garbage(i):  # random bytes, or a frame of random bytes the size of a ticket
    s = socket.socket()
    s.settimeout(1)
    s.bind((f"127.0.2.{i % 50 + 1}", 0))
    try:
        s.connect(("127.0.0.3", port))
        body = os.urandom(100 + i % 400)
        s.sendall(body if i % 2 else struct.pack(">I", len(body)) + body)
        n[1] += 1
    except OSError:
        pass
    socks.append(s)

for i in range(2000):
    idle(i)
for i in range(400):
    garbage(i)
with open(ready, "w") as f:
    f.write("ready\n")
i = 0
while not done.is_set():  # more of both until told to stop
    idle(i)
    if i % 4 == 0:
        garbage(i)
    i += 1
    if len(socks) > 8000:  # stay well inside our own descriptor limit
        for s in socks[:4000]:
            s.close()
        del socks[:4000]
print(n[0], n[1])
PY
FLOOD=$!
CLEANUP_HOOKS+=("kill $FLOOD 2>/dev/null")
read -r l < "$T/flood.ready" || fail "the flood did not start"
fds=$(ls "/proc/$qs/fd" | wc -l)
rss1=$(rss)
t0=$(date +%s%N)
ctl "{\"op\":\"release\",\"id\":$hold}" >/dev/null
wait $SUBMIT
rc=$?
join_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 0 ] && [ "$(cat "$T/submit.out")" = hello ] ||
  fail "alpha's job over the new link failed during the flood: exit $rc, '$(cat "$T/submit.out")' ($(cat "$T/submit.err"))"
[ -d "/proc/$qs" ] && fds=$(( fds > $(ls "/proc/$qs/fd" | wc -l) ? fds : $(ls "/proc/$qs/fd" | wc -l) )) && rss1=$(rss)
echo stop > "$T/flood.stop"
wait $FLOOD || fail "the flood failed"
read -r idle garbage < "$T/flood.count"
lines=$(( $(wc -l < "$T/beta.log") - lines0 ))
grow=$(( (rss1 - rss0) / 1024 ))
# AddressSanitizer keeps freed memory in quarantine: a looser bound there.
limit=8
grep -q __asan_init "$JSD_BIN/jsd-queue-server" && limit=64
[ $fds -lt 64 ] || fail "QueueServer_alpha held $fds descriptors during the flood"
[ $grow -lt $limit ] || fail "QueueServer_alpha's RSS grew by $grow MiB during the flood"
[ $lines -lt 30 ] || fail "the flood wrote $lines log lines"
grep -q "QueueServer_.*killed by signal" "$T/beta.log" && fail "a queue-server was killed"
kill -0 "${NODE_PID[beta]}" || fail "beta died"
# Where the link is now: the port of beta's queue-server for alpha. It
# listens no more (the link is up); if the flood cost the first try (its
# connection made room for the flood's), alpha came back on another port.
link_port=$(node_cmd beta jsd-listener --status --json |
  "$PY" -c 'import json,sys; print(next(l["port"] for l in json.load(sys.stdin)["links"] if l["peer"]=="alpha" and l["direction"]=="in" and l["state"]=="up"))') ||
  fail "beta shows no link from alpha"
"$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.3", int(sys.argv[1])), 2)' "$link_port" 2>/dev/null &&
  fail "the link's port $link_port still takes connections"
how="on the flooded port"
[ "$link_port" = "$port" ] || how="on port $link_port after the flooded one"
node_cmd alpha jsd-submit beta hello >/dev/null 2>"$T/submit2.err" || fail "a second job over the link failed: $(cat "$T/submit2.err")"
pass "$idle idle and $garbage garbage connections to port $port: the queue-server held at most $fds descriptors, RSS +$grow MiB, $lines log lines; the link came up $how, the job done $join_ms ms after the answer was let go"
