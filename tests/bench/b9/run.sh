#!/usr/bin/env bash
# Benchmark B9: the cold first `jsd-submit NODE true` between two network
# namespaces joined by a 10 ms-each-way delay line (20 ms RTT), in
# milliseconds and in round trips, beside a cold `ssh host true` over the same
# path.
#
#   bash tests/bench/b9/run.sh BIN_DIR [RUNS]
#
# Needs root (namespaces, TAP devices); prints one "B9 ... skipped: ..." line
# and exits 0 when it cannot run.  Everything stays on this machine:
#
#   netns jsdb9a: b9a 192.0.2.1/24 --TAP-- delayline (10 ms each way) --TAP-- b9b 192.0.2.2/24 :netns jsdb9b
#
# alpha (jsd) and the ssh client run in jsdb9a, beta (jsd) and a private sshd
# in jsdb9b.  Each jsd run is a fresh node pair (new state dirs, no link up);
# RUNS (default 5) runs alternate with cold ssh runs, medians are reported.
# One extra run of each is captured with tcpdump on b9a and its sequential
# round trips counted.  Cleans up namespaces, processes and temp files on exit;
# bounded to 170 s.  B9_KEEP=1 keeps the temp dir (logs, captures);
# B9_DELAY_MS=N sets the one-way delay (0: no delay line cost but the TAP hop).
set -uo pipefail
LIMIT_S=170
if [ -z "${B9_BOUNDED:-}" ]; then   # bounded in time: TERM at LIMIT_S (the trap cleans up), KILL 20 s later
    B9_BOUNDED=1 exec timeout -k 20 $LIMIT_S bash "$0" "$@"
fi

BIN=$(cd "${1:-build/bin}" 2>/dev/null && pwd) || { echo "B9 skipped: no BIN_DIR ${1:-build/bin}"; exit 0; }
RUNS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
DELAY_MS=${B9_DELAY_MS:-10}   # one way; B9_DELAY_MS=0 shows the local (CPU) part alone
NSA=jsdb9a NSB=jsdb9b IFA=b9a IFB=b9b IPA=192.0.2.1 IPB=192.0.2.2
T_START=$(date +%s)

skip() { echo "B9 cold first jsd-submit over $((2 * DELAY_MS)) ms RTT: skipped: $*"; exit 0; }
log() { echo "b9: $*" >&2; }

[ "$(id -u)" = 0 ] || skip "not root (needs network namespaces and TAP devices)"
for t in ip cc python3; do command -v $t >/dev/null || skip "$t not installed"; done
[ -x "$BIN/jsd-listener" ] && [ -x "$BIN/jsd-submit" ] || skip "no jsd binaries in $BIN"
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
PY=$(python3 -c 'import sys; print(sys.executable)')   # not the pyenv shim: it costs ~100 ms a call
UTIL="$PY $HERE/b9util.py"

exec 9>/run/jsdb9.lock
flock -n 9 || skip "another B9 run holds /run/jsdb9.lock"

T=$(mktemp -d /tmp/jsd-b9.XXXXXX)
chmod 755 "$T"
BG=()          # every background process we started, by pid
DL_PID=""

cleanup() {
    trap - EXIT INT TERM
    local p
    for ((i = ${#BG[@]} - 1; i >= 0; i--)); do
        p=${BG[$i]}
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${BG[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    # Anything still in our own namespaces was started by this script (a
    # listener's children): end it by pid.
    for ns in $NSA $NSB; do
        if ip netns pids $ns >/dev/null 2>&1; then
            for p in $(ip netns pids $ns); do kill -TERM "$p" 2>/dev/null; done
        fi
    done
    sleep 0.2
    for ns in $NSA $NSB; do
        if ip netns pids $ns >/dev/null 2>&1; then
            for p in $(ip netns pids $ns); do kill -KILL "$p" 2>/dev/null; done
            ip netns del $ns 2>/dev/null
        fi
    done
    [ -n "$DL_PID" ] && kill -TERM "$DL_PID" 2>/dev/null && wait "$DL_PID" 2>/dev/null
    [ -s "$T/delayline.err" ] && sed 's/^/b9: /' "$T/delayline.err" >&2
    if [ -n "${B9_KEEP:-}" ]; then log "kept $T (node logs, captures)"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'log "interrupted or out of time ($LIMIT_S s)"; exit 1' INT TERM

# A snapshot of the binaries: others may rebuild BIN_DIR while this runs
# (jsd-listener starts jsd-client and jsd-queue-server from its own folder).
mkdir -p "$T/bin"
JSD_BINS="jsd-listener jsd-client jsd-queue-server jsd-submit"
snapshot() {
    local b
    for b in $JSD_BINS; do
        cp "$BIN/$b" "$T/bin/$b" 2>/dev/null && cmp -s "$BIN/$b" "$T/bin/$b" && chmod 755 "$T/bin/$b" &&
            "$T/bin/$b" -V >/dev/null 2>&1 || return 1
    done
}
ok=0
for _ in $(seq 10); do snapshot && { ok=1; break; }; sleep 3; done   # a rebuild in progress: wait for it
[ $ok = 1 ] || skip "cannot take a working copy of the jsd binaries in $BIN (being rebuilt?)"
BIN="$T/bin"

# --- tools: sshd/ssh for the baseline, tcpdump for the captures, ping ------
want=""
[ -x /usr/sbin/sshd ] && command -v ssh >/dev/null || want="$want openssh-server openssh-client"
command -v tcpdump >/dev/null || want="$want tcpdump"
command -v ping >/dev/null || want="$want iputils-ping"
if [ -n "$want" ]; then
    log "installing$want"
    created=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then   # do not let the package start a system sshd
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1
    fi
    DEBIAN_FRONTEND=noninteractive timeout 90 apt-get install -y -qq --no-install-recommends $want >/dev/null 2>&1 ||
        { timeout 60 apt-get update -qq >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive timeout 90 apt-get install -y -qq --no-install-recommends $want >/dev/null 2>&1; } ||
        log "could not install$want"
    [ -n "$created" ] && rm -f /usr/sbin/policy-rc.d
fi
HAVE_SSH=1; { [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null; } || HAVE_SSH=0
HAVE_TCPDUMP=1; command -v tcpdump >/dev/null || HAVE_TCPDUMP=0

# --- the two namespaces and the delay line ---------------------------------
for ns in $NSA $NSB; do
    ip netns pids $ns >/dev/null 2>&1 && ip netns del $ns 2>/dev/null   # left over by a killed run
    ip netns add $ns 2>/dev/null || skip "cannot create network namespace $ns"
    ip -n $ns link set lo up
    # no IPv6: no router solicitations or DAD in the captures
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
done
cc -O2 -Wall -o "$T/delayline" "$HERE/delayline.c" 2>"$T/cc.err" || { cat "$T/cc.err" >&2; skip "delayline.c does not compile"; }
"$T/delayline" -d $DELAY_MS /run/netns/$NSA $IFA /run/netns/$NSB $IFB >"$T/delayline.out" 2>"$T/delayline.err" 9>&- &
DL_PID=$!
for _ in $(seq 50); do grep -q ready "$T/delayline.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$T/delayline.out" || { cat "$T/delayline.err" >&2; skip "the delay line did not start (TAP devices?)"; }
grep -q "not real-time" "$T/delayline.out" && log "delay line is not real-time: expect jitter"
ip -n $NSA addr add $IPA/24 dev $IFA && ip -n $NSA link set $IFA up &&
ip -n $NSB addr add $IPB/24 dev $IFB && ip -n $NSB link set $IFB up || skip "cannot configure $IFA/$IFB"
# Static neighbours: no ARP round trip inside any measurement.
MACA=$(ip netns exec $NSA cat /sys/class/net/$IFA/address)
MACB=$(ip netns exec $NSB cat /sys/class/net/$IFB/address)
ip -n $NSA neigh replace $IPB lladdr "$MACB" dev $IFA nud permanent
ip -n $NSB neigh replace $IPA lladdr "$MACA" dev $IFB nud permanent

# --- check the delay line before trusting it -------------------------------
if command -v ping >/dev/null; then
    ip netns exec $NSA ping -c 5 -i 0.2 -W 2 $IPB >"$T/ping.ab" 2>&1
    ip netns exec $NSB ping -c 5 -i 0.2 -W 2 $IPA >"$T/ping.ba" 2>&1
    ip netns exec $NSA ping -c 3 -i 0.2 -W 2 -s 1472 -M do $IPB >"$T/ping.big" 2>&1
    for f in ab ba big; do
        echo "B9 delay line check ($f): $(grep -o 'time=[0-9.]* ms' "$T/ping.$f" | sed 's/time=//' | tr '\n' ' ')"
    done
    read -r RMIN RTT RMAX RN < <($UTIL ping-summary "$T/ping.ab")
    read -r _ RTT_BIG _ RN_BIG < <($UTIL ping-summary "$T/ping.big")
    [ "$RN" = 5 ] && [ "$RN_BIG" = 3 ] || { echo "B9 FAILED: the delay line loses frames (ping: $RN/5, $RN_BIG/3 with 1500 B)"; exit 1; }
else
    # No ping: time TCP connects (SYN / SYN-ACK) to a throwaway listener in b.
    ip netns exec $NSB $PY -c "import socket,time;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('$IPB',9));s.listen(16);time.sleep(30)" &
    BG+=($!); sleep 0.3
    ip netns exec $NSA $UTIL tcprtt $IPB 9 5 >"$T/ping.ab"
    echo "B9 delay line check (tcp connect a->b): $(tr '\n' ' ' <"$T/ping.ab")"
    RTT=$($UTIL median $(cat "$T/ping.ab")); RMIN=$(sort -n "$T/ping.ab" | head -1); RMAX=$(sort -n "$T/ping.ab" | tail -1); RTT_BIG=-
fi
echo "B9 delay line: RTT min/avg/max $RMIN/$RTT/$RMAX ms (target $((2 * DELAY_MS)) ms), 1500 B frames avg $RTT_BIG ms"
awk -v r="$RTT" -v d=$DELAY_MS 'BEGIN { exit !(r >= 2 * d - 0.5 && r <= 2 * d + 3 && r > 0) }' ||
    { echo "B9 FAILED: the delay line's RTT ($RTT ms) is not $((2 * DELAY_MS)) ms"; exit 1; }
# Round trips below are counted against the RTT the path really has.

# --- jsd: keys once, a fresh pair of nodes for every run -------------------
KA=$("$BIN/jsd-listener" --gen-key "$T/alpha.key") && KB=$("$BIN/jsd-listener" --gen-key "$T/beta.key") ||
    skip "jsd-listener --gen-key failed"

# node_conf NAME IP KEYFILE PEER PEER_IP PEER_KEY STATE_DIR OUT
node_conf() {
    cat >"$8" <<EOF
{"node": "$1", "listen": "$2:4455", "state_dir": "$7", "key_file": "$3",
 "peers": {"$4": {"address": "$5:4455", "public_key": "$6"}},
 "jobs": {"true": {"command": ["/bin/true"]}}}
EOF
}

# start_node NS CONF LOG: starts a listener, waits for "ready", sets NODE_PID
start_node() {
    local fifo
    fifo=$(mktemp -u "$T/ready.XXXXXX"); mkfifo "$fifo"
    ip netns exec "$1" "$BIN/jsd-listener" --config "$2" --ready-fd 3 3>"$fifo" 2>>"$3" >/dev/null 9>&- &
    NODE_PID=$!
    BG+=($NODE_PID)
    local line=""
    read -r -t 10 line <"$fifo"
    rm -f "$fifo"
    [ "$line" = ready ] || { log "node did not start; its log:"; cat "$3" >&2; return 1; }
}

stop_node() {
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# capture_start FILE: tcpdump on a's side of the link; sets TD_PID
capture_start() {
    TD_PID=""
    [ $HAVE_TCPDUMP = 1 ] || return 0
    ip netns exec $NSA tcpdump -Z root -i $IFA -nn -s 200 --immediate-mode -w "$1" 2>"$1.err" >/dev/null 9>&- &
    TD_PID=$!
    BG+=($TD_PID)
    for _ in $(seq 100); do grep -q "listening on" "$1.err" 2>/dev/null && break; sleep 0.02; done
}

capture_stop() {
    [ -n "$TD_PID" ] || return 0
    sleep 0.1
    kill -INT "$TD_PID" 2>/dev/null
    wait "$TD_PID" 2>/dev/null
}

# jsd_run N [CAPTURE]: one cold first submission on a fresh pair; prints "T0 T1 MS RC WARM_MS"
jsd_run() {
    local d="$T/jsd$1"
    mkdir -p "$d"
    node_conf alpha $IPA "$T/alpha.key" beta $IPB "$KB" "$d/alpha-state" "$d/alpha.json"
    node_conf beta $IPB "$T/beta.key" alpha $IPA "$KA" "$d/beta-state" "$d/beta.json"
    start_node $NSB "$d/beta.json" "$d/beta.log" || return 1
    local pb=$NODE_PID
    start_node $NSA "$d/alpha.json" "$d/alpha.log" || return 1
    local pa=$NODE_PID
    sleep 0.2   # let both listeners settle: the measured call is the only thing going on
    [ -n "${2:-}" ] && capture_start "$2"
    local cold warm
    cold=$(ip netns exec $NSA env JSD_CONFIG="$d/alpha.json" $UTIL time -- "$BIN/jsd-submit" -q beta true)
    warm=$(ip netns exec $NSA env JSD_CONFIG="$d/alpha.json" $UTIL time -- "$BIN/jsd-submit" -q beta true)
    [ -n "${2:-}" ] && capture_stop
    stop_node $pa; stop_node $pb
    echo "$cold $(echo "$warm" | awk '{print $3}')"
}

# --- ssh: a private sshd in b with throwaway host and user keys ------------
SSH=()
if [ $HAVE_SSH = 1 ]; then
    S="$T/ssh"; mkdir -p "$S"
    ssh-keygen -q -t ed25519 -N "" -f "$S/host" && ssh-keygen -q -t ed25519 -N "" -f "$S/id"
    cp "$S/id.pub" "$S/authorized_keys"; chmod 600 "$S/authorized_keys"
    cat >"$S/sshd_config" <<EOF
Port 22
ListenAddress $IPB
HostKey $S/host
AuthorizedKeysFile $S/authorized_keys
PidFile $S/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $(id -un)
LogLevel ERROR
EOF
    mkdir -p -m 755 /run/sshd
    # The remote shell would source the user's rc files (here ~100 ms of pyenv
    # set-up): mask them with empty files in a private mount namespace, so the
    # baseline measures ssh, not .bashrc (as bench.py's Sshd does).
    H=$(eval echo ~"$(id -un)")
    masks=""
    for f in .bashrc .profile .bash_profile .bash_login; do masks="$masks [ -e $H/$f ] && mount --bind /dev/null $H/$f;"; done
    ip netns exec $NSB unshare -m --propagation private sh -c "$masks exec /usr/sbin/sshd -D -e -f $S/sshd_config" 2>"$S/log" 9>&- &
    BG+=($!)
    SSH=(ssh -i "$S/id" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
         -o LogLevel=ERROR -o BatchMode=yes -o ControlMaster=no -o ControlPath=none $IPB true)
    ok=0
    for _ in $(seq 50); do
        ip netns exec $NSA "${SSH[@]}" </dev/null >/dev/null 2>&1 && { ok=1; break; }
        sleep 0.1
    done
    [ $ok = 1 ] || { log "private sshd did not answer:"; cat "$S/log" >&2; HAVE_SSH=0; }
fi

# ssh_run [CAPTURE]: prints "T0 T1 MS RC"
ssh_run() {
    [ -n "${1:-}" ] && capture_start "$1"
    ip netns exec $NSA $UTIL time -- "$(command -v ssh)" "${SSH[@]:1}" </dev/null
    [ -n "${1:-}" ] && capture_stop
}

# --- the runs: jsd and ssh alternate ---------------------------------------
JSD_MS=() WARM_MS=() SSH_MS=()
for i in $(seq "$RUNS"); do
    r=$(jsd_run "$i") || { echo "B9 FAILED: jsd run $i could not start its nodes"; exit 1; }
    read -r _ _ ms rc warm <<<"$r"
    [ "$rc" = 0 ] || { echo "B9 FAILED: cold jsd-submit exited $rc (run $i)"; cat "$T/jsd$i/"*.log >&2; exit 1; }
    JSD_MS+=("$ms"); WARM_MS+=("$warm")
    if [ $HAVE_SSH = 1 ]; then
        read -r _ _ ms rc <<<"$(ssh_run)"
        [ "$rc" = 0 ] || { log "cold ssh exited $rc (run $i)"; HAVE_SSH=0; }
        SSH_MS+=("$ms")
    fi
    log "run $i: cold jsd ${JSD_MS[-1]} ms (then warm $warm ms)${SSH_MS:+, cold ssh ${SSH_MS[-1]} ms}"
    [ $(( $(date +%s) - T_START )) -lt $((LIMIT_S - 40)) ] || { log "stopping early: time"; break; }
done

JSD=$($UTIL median "${JSD_MS[@]}")
WARM=$($UTIL median "${WARM_MS[@]}")
rt() { awk -v a="$1" -v r="$RTT" 'BEGIN { if (r < 1) printf "n/a"; else printf "%.1f", a / r }'; }
if [ $HAVE_SSH = 1 ] && [ ${#SSH_MS[@]} -gt 0 ]; then
    SSHM=$($UTIL median "${SSH_MS[@]}")
    RATIO=$(awk -v a="$JSD" -v b="$SSHM" 'BEGIN { printf "%.2f", a / b }')
    SSH_TXT="ssh $SSHM ms ($(rt "$SSHM") RTT)"
else
    SSH_TXT="ssh skipped"; RATIO="-"
fi

# --- one captured run of each, round trips counted on the wire -------------
CAP_JSD="" CAP_SSH=""
if [ $HAVE_TCPDUMP = 1 ]; then
    r=$(jsd_run cap "$T/jsd.pcap") && read -r t0 t1 ms rc _ <<<"$r" &&
        CAP_JSD=$($UTIL analyze "$T/jsd.pcap" "$t0" "$t1" "$RTT" "$RMIN" $IPA "cold jsd-submit beta true ($ms ms)")
    if [ $HAVE_SSH = 1 ]; then
        read -r t0 t1 ms rc <<<"$(ssh_run "$T/ssh.pcap")" &&
            CAP_SSH=$($UTIL analyze "$T/ssh.pcap" "$t0" "$t1" "$RTT" "$RMIN" $IPA "cold ssh $IPB true ($ms ms)")
    fi
fi
field() { echo "$1" | $PY -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

echo "B9 cold first jsd-submit over $((2 * DELAY_MS)) ms RTT (median of ${#JSD_MS[@]}, fresh pair each run): jsd $JSD ms ($(rt "$JSD") RTT), $SSH_TXT, ratio $RATIO"
echo "B9 runs: jsd ${JSD_MS[*]} ms; ssh ${SSH_MS[*]:-} ms; RTT $RTT ms"
echo "B9 warm jsd-submit right after (link up) over $((2 * DELAY_MS)) ms RTT: jsd $WARM ms ($(rt "$WARM") RTT)"
for c in CAP_JSD CAP_SSH; do
    v=${!c}
    [ -n "$v" ] || continue
    name=jsd; [ $c = CAP_SSH ] && name=ssh
    echo "B9 round trips on the wire, cold $name (tcpdump on a's side, one run of $(field "$v" wall_ms) ms): critical path $(field "$v" critical_rtts) RTT ($(field "$v" critical_wait_ms) ms waiting on b incl. b's work, $(field "$v" critical_local_ms) ms on a between), $(field "$v" flips) direction flips a->b->a with b answering >= RTT/2 later ($(field "$v" flips_all) flips in all), $(field "$v" connections) TCP connections, $(field "$v" packets) packets; first packet $(field "$v" first_packet_ms) ms after start, last from b at $(field "$v" last_in_ms) ms: on the wire $(field "$v" span_ms) ms = $(field "$v" span_rtt) RTT"
done
[ $HAVE_TCPDUMP = 1 ] || echo "B9 round trips on the wire: skipped (no tcpdump)"
if [ -n "$CAP_JSD" ] && [ -n "$CAP_SSH" ]; then
    cj=$(field "$CAP_JSD" critical_rtts); cs=$(field "$CAP_SSH" critical_rtts)
    echo "B9 cold first call, sequential round trips on the critical path (tcpdump): jsd $cj RTT, ssh $cs RTT, ratio $(awk -v a="$cj" -v b="$cs" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
fi
exit 0
