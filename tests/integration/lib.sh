# Helpers for the integration tests (in the spirit of OpenSSH's regress/):
# each test starts real jsd-listener nodes on 127.0.0.2, 127.0.0.3, ...,
# each with its own config and state dir, waits until they answer, and
# prints the daemons' logs when something fails.
set -u
: "${JSD_BIN:?set JSD_BIN to the directory with the built binaries}"
# As root, each test runs in a network namespace of its own (loopback
# only), so that its nodes' fixed addresses (127.0.0.2:4455, ...) collide
# with no other checkout's tests and no node running on this machine; a CI
# run beside another ctest failed on "address already in use" before.
# JSD_TEST_SHARED_NET=1 keeps the machine's network (to watch a test's
# traffic from outside).
if [ "$(id -u)" = 0 ] && [ -z "${JSD_TEST_NETNS:-}" ] && [ -z "${JSD_TEST_SHARED_NET:-}" ] &&
  command -v unshare >/dev/null && command -v ip >/dev/null &&
  unshare -n true 2>/dev/null; then
  export JSD_TEST_NETNS=1
  exec unshare -n bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
export PATH="$JSD_BIN:$PATH"
unset JSD_CONFIG
T=$(mktemp -d /tmp/jsd-it.XXXXXX)
declare -A NODE_PID=()
declare -A NODE_NETNS=()  # name -> network namespace to run the node in
CLEANUP_HOOKS=()
FAILED=0
TEST_NAME=$(basename "$0" .sh)

log() { printf '%s: %s\n' "$TEST_NAME" "$*"; }

dump_logs() {
  for f in "$T"/*.log; do
    [ -f "$f" ] || continue
    echo "----- $(basename "$f") -----"
    tail -n 60 "$f"
  done
}

fail() {
  FAILED=1
  echo "$TEST_NAME: FAIL: $*" >&2
  dump_logs >&2
  exit 1
}

stop_node() {
  local name=$1 pid=${NODE_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "NODE_PID[$name]"
}

cleanup() {
  local rc=$?
  for n in "${!NODE_PID[@]}"; do stop_node "$n"; done
  for h in "${CLEANUP_HOOKS[@]}"; do eval "$h"; done
  # Under check-asan the daemons report to their logs: any report fails the
  # test, and so does a daemon that crashed on an assertion.
  local bad="Sanitizer\|runtime error:\|Assertion .* failed"
  if grep -l "$bad" "$T"/*.log >/dev/null 2>&1; then
    echo "$TEST_NAME: FAIL: a sanitizer report or failed assertion in a daemon log" >&2
    grep -h -A30 "$bad" "$T"/*.log | head -80 >&2
    FAILED=1
    rc=1
  fi
  # The logs were printed; the files stay only when asked (JSD_TEST_KEEP=1),
  # so failed runs do not pile up in /tmp.
  if [ "$FAILED" != 0 ] && [ "${JSD_TEST_KEEP:-}" = 1 ]; then
    echo "(test files kept in $T)" >&2
  else
    rm -rf "$T"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

gen_key() { [ -e "$1" ] || jsd-listener --gen-key "$1" >/dev/null 2>&1 || fail "cannot generate key $1"; }

# node_key NAME: the path of NAME's own private key (made on first use).
node_key() {
  mkdir -p "$T/keys"
  gen_key "$T/keys/$1.key"
  echo "$T/keys/$1.key"
}

# pub_key FILE: the public key of a private key file.
pub_key() { jsd-listener --public-key "$1" || fail "cannot read key $1"; }

# pin_peers PEERS_JSON: {"beta": "ADDR"} -> {"beta": {"address": ADDR,
# "public_key": beta's key}}; entries that are objects stay as they are.
pin_peers() {
  local names n out="{" sep=""
  names=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(" ".join(n for n,v in d.items() if isinstance(v,str)))' "$1") ||
    fail "bad peers JSON: $1"
  for n in $names; do node_key "$n" >/dev/null; done
  python3 - "$1" "$T/keys" <<'EOP'
import json, subprocess, sys
peers, keys = json.loads(sys.argv[1]), sys.argv[2]
for n, v in peers.items():
    if isinstance(v, str):
        pub = subprocess.run(["jsd-listener", "--public-key", f"{keys}/{n}.key"], check=True,
                             capture_output=True, text=True).stdout.strip()
        peers[n] = {"address": v, "public_key": pub}
print(json.dumps(peers))
EOP
}

# make_node NAME IP KEYFILE PEERS_JSON [EXTRA_JSON_MEMBERS]
# Every node has its own key ($T/keys/NAME.key): KEYFILE "-" means that one;
# another path makes the node use that key instead (an impostor's). Peers
# given as "ADDR" are pinned with their own keys.
make_node() {
  local name=$1 ip=$2 key=$3 peers=$4 extra=${5:-}
  mkdir -p "$T/$name"
  [ "$key" = - ] && key=$(node_key "$name")
  peers=$(pin_peers "$peers") || exit 1
  cat > "$T/$name.json" <<EOC
{
  "node": "$name",
  "listen": "$ip:4455",
  "state_dir": "$T/$name/state",
  "key_file": "$key",
  "peers": $peers,
  "heartbeat_ms": 200,
  "dead_after_ms": 1000,
  "idle_heartbeat_ms": 400,
  "reconnect_max_ms": 500${extra:+,
  $extra}
}
EOC
}

# start_node NAME: starts the listener and returns once it answers (it
# writes "ready" on a pipe after binding its ports: no polling, no sleep).
start_node() {
  local name=$1 fifo="$T/$1.ready" line=""
  rm -f "$fifo"
  mkfifo "$fifo"
  local ns=()
  [ -n "${NODE_NETNS[$name]:-}" ] && ns=(ip netns exec "${NODE_NETNS[$name]}")
  "${ns[@]}" jsd-listener --config "$T/$name.json" --ready-fd 3 3>"$fifo" 2>>"$T/$name.log" &
  NODE_PID[$name]=$!
  if ! read -r -t 20 line < "$fifo" || [ "$line" != ready ]; then
    fail "node $name did not become ready"
  fi
  rm -f "$fifo"
}

# node_cmd NAME CMD ARGS...: runs a tool with NAME's configuration.
node_cmd() {
  local name=$1
  shift
  JSD_CONFIG="$T/$name.json" "$@"
}

# wait_until DESCRIPTION CMD...: retries CMD (each try is itself a round
# trip to the node) until it succeeds, for at most 20 s.
wait_until() {
  local what=$1 i
  shift
  for i in $(seq 1 200); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "timed out waiting until $what"
}

# link_state NODE PEER DIR: prints the state of a link from --status --json.
link_state() {
  node_cmd "$1" jsd-listener --status --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(l["state"] for l in d["links"] if l["peer"]==sys.argv[1] and l["direction"]==sys.argv[2]))' "$2" "$3"
}

link_is_up() { [ "$(link_state "$1" "$2" "$3")" = up ]; }

# children_of PID: the direct children of a listener.
children_of() { pgrep -P "$1" | tr '\n' ' '; }
# child_named PID NAME: the children of PID (one this test started) whose
# command line begins with NAME (a seed name, or a program's path).
child_named() {
  local p
  for p in $(pgrep -P "$1"); do
    case "$(tr '\0' ' ' < /proc/"$p"/cmdline 2>/dev/null)" in "$2 "*) echo "$p" ;; esac
  done
}

# procs PATTERN: matching processes' args (for the seed names).
# Only this test's (their command lines name its directory): another
# checkout's tests or a running node may have the same names.
procs() { ps -eo args | grep -E "^$1( |$)" | grep -F -- "$T/" | grep -v grep; }

pass() { echo "$TEST_NAME: PASS${1:+: $1}"; }

# skip WHY: ends the test as skipped (ctest SKIP_RETURN_CODE 77).
skip() {
  echo "$TEST_NAME: SKIP: $*"
  exit 77
}

# start_tamper_proxy: tamper_proxy.py as a man in the middle between alpha
# and beta, on 127.0.0.20 (beta's node port 4455 and its queue-server ports
# 56000-56009, forwarded to 127.0.0.3), its log $T/proxy.log, stopped at the
# end. Sets PY, the interpreter itself: not a version manager's shim in
# front of it (a test drives the proxy with up to ~200 short commands, and a
# shim adds most of a second to each on a busy machine). Then:
#   ctl JSON     one command to the proxy; its answer on stdout (fails the test if it fails)
#   field NAME   member NAME of the JSON object on stdin
start_tamper_proxy() {
  PROXY_PY=$(dirname "$JSD_TEST_LIB")/tamper_proxy.py
  PY=$(python3 -c 'import sys; print(sys.executable)') || fail "no python3"
  mkfifo "$T/proxy.ready"
  "$PY" "$PROXY_PY" --listen-host 127.0.0.20 --target-host 127.0.0.3 --ports 4455,56000-56009 \
    --control "$T/proxy.sock" --ready-fd 3 3>"$T/proxy.ready" 2>>"$T/proxy.log" &
  PROXY_PID=$!
  CLEANUP_HOOKS+=("kill $PROXY_PID 2>/dev/null; wait $PROXY_PID 2>/dev/null")
  local line
  read -r line < "$T/proxy.ready" && [ "$line" = ready ] || fail "the tamper proxy did not start"
}
ctl() { "$PY" "$PROXY_PY" --control "$T/proxy.sock" --cmd "$1" || fail "proxy command failed: $1"; }
field() { "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }
