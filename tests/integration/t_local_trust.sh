# Local trust (issue 23), as a local attacker tries it: an unprivileged user
# made for this test plants a listener where root's tools look for the
# node's control socket, owns a key file, can write a key's directory; a
# config is group-writable. Each is refused with its line, by the tools
# before they send a byte, by the listener at start and at SIGHUP, and by
# -t; the normal layouts (root's, and a service user's) still work.
source "$JSD_TEST_LIB"
[ "$(id -u)" = 0 ] || skip "needs root (to make a throwaway user)"
command -v useradd >/dev/null && command -v userdel >/dev/null && command -v setpriv >/dev/null ||
  skip "needs useradd, userdel and setpriv"
PY=/usr/bin/python3  # root's python3 may live where the user cannot reach
[ -x "$PY" ] || skip "needs $PY"

U=jsdrt$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
useradd --system --no-create-home --shell /usr/sbin/nologin "$U" 2> "$T/useradd.err" ||
  skip "cannot add a user: $(cat "$T/useradd.err")"
UPIDS=()
# The user's processes are the ones this test started (by pid), then the user goes.
CLEANUP_HOOKS+=('for p in "${UPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; userdel -f "$U"')
FAKE_PY=$(dirname "$JSD_TEST_LIB")/fake_listener.py
UID_U=$(id -u "$U")
GID_U=$(id -g "$U")
# A command, not a function: started with &, $! is then the user's process itself.
AS_USER=(setpriv --reuid "$UID_U" --regid "$GID_U" --clear-groups --)

# $T is root's, mode 0700: the user may pass through it (0711), and
# $T/pub stands for /tmp (root's, sticky, world-writable).
chmod 0711 "$T"
mkdir -m 1777 "$T/pub"

# fake NAME PATH [--drop]: a fake listener on PATH (as the user, or bound by
# root and then the user's with --drop); returns once it listens.
fake() {
  local name=$1 path=$2 fifo="$T/$1.ready" line=""
  mkfifo "$fifo"
  if [ "${3:-}" = --drop ]; then
    "$PY" "$FAKE_PY" "$path" --drop "$UID_U:$GID_U" > "$fifo" 2>> "$T/$name.log" &
  else
    "${AS_USER[@]}" "$PY" "$FAKE_PY" "$path" > "$fifo" 2>> "$T/$name.log" &
  fi
  UPIDS+=($!)
  read -r -t 20 line < "$fifo" && [ "$line" = ready ] || fail "fake listener $name did not start"
  rm -f "$fifo"
}
# set_key FILE KEY JSON: sets (or with JSON "-" removes) a key of a config file.
set_key() {
  python3 - "$@" <<'EOP' || fail "cannot edit $1"
import json, sys
path, key, value = sys.argv[1:4]
d = json.load(open(path))
if value == "-":
    d.pop(key, None)
else:
    d[key] = json.loads(value)
json.dump(d, open(path, "w"), indent=2)
EOP
}
# seen PATH: what the fake listener on PATH has received ("conns=N bytes=M").
seen() {
  "$PY" -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"probe"); print(s.recv(100).decode().strip())' "$1"
}
# refused NAME MESSAGE CMD...: CMD (bounded by timeout(1), in case it does not refuse) exits with 255 (tools) or 1 (listener, -t)
# and prints a line ending in "error: MESSAGE" (the tools' lines are
# "PROG: error: ...", the listener's log lines "TIME jsd-listener[PID] error: ...").
refused() {
  local name=$1 msg=$2 rc=0 l found=0
  shift 2
  "$@" > "$T/out" 2> "$T/err" || rc=$?
  while IFS= read -r l; do [[ $l == *"error: $msg" ]] && found=1; done < "$T/err"
  { [ $rc = 255 ] || [ $rc = 1 ]; } && [ $found = 1 ] ||
    fail "$name: exit $rc, expected a line ending 'error: $msg'; stderr: $(cat "$T/err") stdout: $(head -c 300 "$T/out")"
}

# The peers of the nodes below: beta, pinned, never started (no link is needed).
node_key beta > /dev/null

# 1. The planted socket. The example layout had the state dir under a fixed
# /tmp name: the user makes that directory first and listens on
# STATE_DIR/control.sock. Root's tools refuse it and send nothing.
make_node planted 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' '"jobs": {"hello": {"command": ["/bin/echo", "hi"]}}'
set_key "$T/planted.json" state_dir "\"$T/pub/jsd/alpha\""
"${AS_USER[@]}" mkdir -p "$T/pub/jsd/alpha"
fake planted "$T/pub/jsd/alpha/control.sock"
want="refusing the control socket $T/pub/jsd/alpha/control.sock: its directory $T/pub/jsd belongs to user $U"
refused "jsd-submit" "$want" node_cmd planted timeout 20 jsd-submit -p TOKEN=s3cret planted hello
grep -qxF "jsd-submit: error: $want" "$T/err" || fail "jsd-submit's line: $(cat "$T/err")"
refused "jsd-ping" "$want" node_cmd planted timeout 20 jsd-ping -c 1 beta
grep -qxF "jsd-ping: error: $want" "$T/err" || fail "jsd-ping's line: $(cat "$T/err")"
refused "jsd-listener --status" "$want" node_cmd planted timeout 20 jsd-listener --status
grep -qxF "jsd-listener: error: $want" "$T/err" || fail "--status's line: $(cat "$T/err")"
[ "$(seen "$T/pub/jsd/alpha/control.sock")" = "conns=0 bytes=0" ] ||
  fail "the planted listener was reached: $(seen "$T/pub/jsd/alpha/control.sock")"
# Root's own listener and -t refuse that state_dir too.
want="refusing state_dir $T/pub/jsd/alpha: its directory $T/pub/jsd belongs to user $U"
refused "listener, planted state_dir" "$want" node_cmd planted timeout 20 jsd-listener
refused "-t, planted state_dir" "$want" node_cmd planted timeout 20 jsd-listener -t -q
log "planted socket: refused by jsd-submit, jsd-ping, --status, the listener and -t; it received nothing"

# 2. A safe path, but the process behind the socket is the user's (it bound
# it as root and became the user before listen): SO_PEERCRED says so.
make_node served 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' "\"jobs\": {\"hello\": {\"command\": [\"/bin/echo\", \"hi\"]}}"
mkdir -p -m 0700 "$T/served/state"
fake served "$T/served/state/control.sock" --drop
refused "jsd-submit, served by the user" \
  "refusing the control socket $T/served/state/control.sock: it is served by user $U (pid ${UPIDS[-1]}), not root" \
  node_cmd served timeout 20 jsd-submit -p TOKEN=s3cret served hello
[ "$(seen "$T/served/state/control.sock")" = "conns=1 bytes=0" ] ||
  fail "the user's listener got bytes: $(seen "$T/served/state/control.sock")"
log "socket served by another user: connected, refused, not a byte sent"

# 3. A key file the user owns (mode 0600: only the user can rewrite it).
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
chown "$U" "$T/keys/alpha.key"
want="refusing key_file $T/keys/alpha.key: it belongs to user $U"
refused "listener, user's key" "$want" node_cmd alpha timeout 20 jsd-listener
refused "-t, user's key" "$want" node_cmd alpha timeout 20 jsd-listener -t -q
chown root "$T/keys/alpha.key"

# 4. A group-writable configuration file.
chmod 0664 "$T/alpha.json"
want="refusing the configuration file $T/alpha.json: it is writable by its group (owner root, mode 0664)"
refused "listener, group-writable config" "$want" node_cmd alpha timeout 20 jsd-listener
refused "-t, group-writable config" "$want" node_cmd alpha timeout 20 jsd-listener -t -q
chmod 0644 "$T/alpha.json"

# 5. A key (root's, 0600) in a directory the user can write: the user's own
# directory, and root's but writable by the user's group.
mkdir -m 0755 "$T/ukeys" "$T/gkeys"
chown "$U" "$T/ukeys"
chgrp "$GID_U" "$T/gkeys"
chmod 0770 "$T/gkeys"
cp -p "$T/keys/alpha.key" "$T/ukeys/alpha.key"
cp -p "$T/keys/alpha.key" "$T/gkeys/alpha.key"
make_node uk 127.0.0.2 "$T/ukeys/alpha.key" '{"beta":"127.0.0.3:4455"}'
want="refusing key_file $T/ukeys/alpha.key: its directory $T/ukeys belongs to user $U"
refused "listener, key in the user's directory" "$want" node_cmd uk timeout 20 jsd-listener
refused "-t, key in the user's directory" "$want" node_cmd uk timeout 20 jsd-listener -t -q
make_node gk 127.0.0.2 "$T/gkeys/alpha.key" '{"beta":"127.0.0.3:4455"}'
want="refusing key_file $T/gkeys/alpha.key: its directory $T/gkeys is writable by its group (owner root, mode 0770)"
refused "listener, key in a group-writable directory" "$want" node_cmd gk timeout 20 jsd-listener
refused "-t, key in a group-writable directory" "$want" node_cmd gk timeout 20 jsd-listener -t -q
log "user's key, group-writable config, key in the user's or a group-writable directory: refused by the listener and -t"

# 6. The normal layout starts; a config made group-writable while it runs is
# refused at SIGHUP, and the running configuration stays.
node_cmd alpha timeout 20 jsd-listener -t -q || fail "-t refused the normal layout"
start_node alpha
node_cmd alpha timeout 20 jsd-listener --status > /dev/null || fail "--status on the normal layout"
chmod 0664 "$T/alpha.json"
kill -HUP "${NODE_PID[alpha]}"
wait_until "the reload is refused" grep -qF "SIGHUP: refusing the configuration file $T/alpha.json: it is writable by its group (owner root, mode 0664)" "$T/alpha.log"
grep -q "SIGHUP: configuration not reloaded" "$T/alpha.log" || fail "no 'not reloaded' line"
# The tools, like ssh with its config file, believe only a configuration
# that root or the user running them alone can change.
refused "--status, group-writable config" \
  "refusing the configuration file $T/alpha.json: it is writable by its group (owner root, mode 0664)" \
  node_cmd alpha timeout 20 jsd-listener --status
chmod 0644 "$T/alpha.json"
node_cmd alpha timeout 20 jsd-listener --status > /dev/null || fail "the node did not keep running after a refused reload"
chown "$U" "$T/alpha.json"
refused "jsd-ping, the user's config" "refusing the configuration file $T/alpha.json: it belongs to user $U" \
  node_cmd alpha timeout 20 jsd-ping -c 1 beta
chown root "$T/alpha.json"
stop_node alpha
log "normal layout: starts, answers; a group-writable config is refused at SIGHUP and the node runs on"

# 7. A service user's layout (as the systemd unit has it): the listener runs
# as the user, with "user" naming it; root's tools accept its socket, with
# and without "user" (then the state directory's owner is the service user).
mkdir -m 0755 "$T/svc"
mkdir -m 0700 "$T/svc/state"
chown "$U:$GID_U" "$T/svc/state"
cp -p "$T/keys/alpha.key" "$T/svc/alpha.key"
chown "$U" "$T/svc/alpha.key"
make_node svc 127.0.0.2 "$T/svc/alpha.key" '{"beta":"127.0.0.3:4455"}' "\"user\": \"$U\""
set_key "$T/svc.json" state_dir "\"$T/svc/state/alpha\""
cp "$T/svc.json" "$T/svc-nouser.json"
set_key "$T/svc-nouser.json" user -
cp "$T/svc.json" "$T/svc-root.json"
set_key "$T/svc-root.json" user '"root"'
node_cmd svc timeout 20 jsd-listener -t -q || fail "-t refused the service layout"
# Run as root with "user" naming another user: refused.
refused "listener as root for user $U" \
  "user: the listener runs as root, not $U (start it as $U: User= in its systemd unit, or runuser -u $U)" \
  node_cmd svc timeout 20 jsd-listener
fifo="$T/svc.ready"
mkfifo "$fifo"
JSD_CONFIG="$T/svc.json" "${AS_USER[@]}" jsd-listener --ready-fd 3 3> "$fifo" 2>> "$T/svc.log" &
UPIDS+=($!)
read -r -t 20 line < "$fifo" && [ "$line" = ready ] || fail "the service user's listener did not start"
node_cmd svc timeout 20 jsd-listener --status > /dev/null 2> "$T/err" || fail "--status with user: $(cat "$T/err")"
JSD_CONFIG="$T/svc-nouser.json" jsd-listener --status > /dev/null 2> "$T/err" || fail "--status without user: $(cat "$T/err")"
# -t without "user" takes the state directory's owner for the service user.
JSD_CONFIG="$T/svc-nouser.json" jsd-listener -t -q || fail "-t refused the service layout without user"
# The same socket with "user" naming someone else (root): the user's
# listener is nobody the tool trusts.
refused "--status, user root" \
  "refusing the control socket $T/svc/state/alpha/control.sock: its directory $T/svc/state belongs to user $U" \
  timeout 20 env JSD_CONFIG="$T/svc-root.json" jsd-listener --status
log "service user's layout: starts as the user; root's tools accept it with and without \"user\""
pass
