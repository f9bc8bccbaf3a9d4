#!/usr/bin/env bash
# jsd demo: two nodes on 127.0.0.2 (alpha) and 127.0.0.3 (beta), with the
# embedded defaults plus a key pair per node, each pinning the other's
# public key: alpha pings beta (the first ping brings up both directions of
# the link), both show their links, alpha runs a job on beta and is refused
# one that beta's allow list keeps for itself, beta's audit log shows both
# decisions, stop.
set -euo pipefail
BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
export PATH="$BIN:$PATH"
unset JSD_CONFIG
D=$(mktemp -d "${XDG_RUNTIME_DIR:-/tmp}/jsd-demo.XXXXXX")  # yours alone (0700); never a fixed name in /tmp
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

declare -A PUB=()
for name in alpha beta; do
  step "jsd-listener --gen-key $D/$name.key       # prints $name's public key"
  PUB[$name]=$(jsd-listener --gen-key "$D/$name.key")
  echo "${PUB[$name]}"
done

# Only what differs from the embedded defaults: name, address, state, key,
# peers (the other node's address and public key), jobs.
for n in alpha:127.0.0.2:beta:127.0.0.3 beta:127.0.0.3:alpha:127.0.0.2; do
  IFS=: read -r name ip peer peerip <<<"$n"
  cat > "$D/$name.json" <<EOC
{
  "node": "$name",
  "listen": "$ip:4455",
  "state_dir": "$D/$name",
  "key_file": "$D/$name.key",
  "peers": { "$peer": { "address": "$peerip:4455", "public_key": "${PUB[$peer]}" } },
  "jobs": {
    "hello": { "command": ["/bin/echo", "hello from $name"] },
    "local": { "command": ["/bin/echo", "only $name itself may run this"], "allow": [] }
  }
}
EOC
done
step "cat $D/alpha.json"
cat "$D/alpha.json"
# Configuration, keys and allow lists, one line per mistake.
for name in alpha beta; do jsd-listener -t -f "$D/$name.json" >/dev/null; done

for name in alpha beta; do
  mkfifo "$D/$name.ready"
  jsd-listener --config "$D/$name.json" --ready-fd 3 3>"$D/$name.ready" 2>"$D/$name.log" &
  pids+=($!)
  read -r _ < "$D/$name.ready"
  echo "started jsd-listener for $name (pid ${pids[-1]}), log in $D/$name.log"
done

step "jsd-ping -c 3 -i 0.2 beta        # on alpha: the first call brings up both directions"
JSD_CONFIG="$D/alpha.json" jsd-ping -c 3 -i 0.2 beta

step "jsd-listener --status             # on alpha"
JSD_CONFIG="$D/alpha.json" jsd-listener --status
step "jsd-listener --status             # on beta"
JSD_CONFIG="$D/beta.json" jsd-listener --status

if [ -x "$BIN/jsd-submit" ]; then
  step "jsd-submit beta hello            # on alpha: run beta's job 'hello'"
  JSD_CONFIG="$D/alpha.json" jsd-submit beta hello && echo "(exit status $?)"
  step "jsd-submit beta local            # on alpha: beta's allow list says no"
  rc=0
  JSD_CONFIG="$D/alpha.json" jsd-submit beta local || rc=$?
  echo "(exit status $rc)"
  [ "$rc" = 255 ] || { echo "demo: a refused job should exit with 255, not $rc" >&2; exit 1; }
  step "cat \$STATE_DIR/audit.log        # on beta: alpha's link and jobs, allowed and refused"
  cat "$D/beta/audit.log"
fi

# Only this demo's processes: the listeners it started and their descendants
# (link processes, the job supervisor), found by parent pid, not by name, so
# other users' and tests' jsd processes on this machine are left out.
step "ps -o pid,ppid,args -p <the listeners' pids and their descendants>"
ours=" ${pids[*]} "
while :; do
  more=$(ps -eo pid=,ppid= | awk -v ours="$ours" 'index(ours, " " $2 " ") && !index(ours, " " $1 " ") { printf "%s ", $1 }')
  [ -n "$more" ] || break
  ours="$ours$more"
done
ps -o pid,ppid,args -p "$(echo $ours | tr ' ' ,)"

step "kill -TERM <listeners>            # stop both nodes"
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p"; done
pids=()
echo "both nodes stopped; their logs:"
cat "$D/alpha.log" "$D/beta.log" | sort | sed 's/^/  /'
