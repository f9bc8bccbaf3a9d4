#!/usr/bin/env bash
# deb_check.sh JSD_DEB: the installed-package test (make -f Makefile.dist deb-check).
# Root only (skipped otherwise). Makes a fresh Debian root with mmdebstrap
# from this machine's apt sources, installs the package into it with
# `apt-get install ./jsd_*.deb`, checks its files, owners and modes, the
# user, the node key, the unit and the conffile; runs `jsd-listener -t` and
# two nodes from the installed programs (as the user jsd, chrooted, in a
# network namespace of their own: no systemd needed) with a job between
# them; purges the package and checks what is left.
set -euo pipefail
say() { printf 'deb-check: %s\n' "$*"; }
fail() {
  printf 'deb-check: FAIL: %s\n' "$*" >&2
  for f in "${R:-/nonexistent}"/srv/*/node.log; do [ -e "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}
if [ "${1:-}" != --nodes ]; then
  [ "$(id -u)" = 0 ] || { say "SKIP: needs root (mmdebstrap, chroot)"; exit 0; }
  DEB=$(realpath "${1:?usage: deb_check.sh JSD_DEB}")
  [ -f "$DEB" ] || fail "no package $DEB"
fi

# --nodes ROOT: the part that runs jsd, in its own network namespace
# (unshare -n: only lo, so the fixed addresses collide with nothing).
if [ "${1:-}" = --nodes ]; then
  R=$2
  ip link set lo up
  as_jsd() { chroot --userspec=jsd:jsd "$R" env -i PATH=/usr/bin:/bin HOME=/var/lib/jsd "$@"; }
  pids=()
  trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait' EXIT
  for n in alpha beta; do
    conf=/etc/jsd/jsd.conf
    [ $n = beta ] && conf=/srv/beta/beta.json
    as_jsd jsd-listener -t -q -f "$conf" || fail "jsd-listener -t -f $conf found mistakes"
    rm -f "$R/srv/$n.ready"
    mkfifo "$R/srv/$n.ready"
    as_jsd jsd-listener -f "$conf" --ready-fd 3 3>"$R/srv/$n.ready" 2>"$R/srv/$n/node.log" &
    pids+=($!)
    read -r -t 20 line < "$R/srv/$n.ready" && [ "$line" = ready ] || fail "$n did not become ready"
  done
  say "two nodes run from the installed programs, as jsd: alpha (/etc/jsd/jsd.conf) and beta"
  out=$(as_jsd env JSD_CONFIG=/etc/jsd/jsd.conf jsd-submit beta hello) || fail "jsd-submit beta hello failed: $out"
  [ "$out" = "hello from beta" ] || fail "the job printed '$out'"
  say "alpha ran beta's job hello: '$out'"
  rc=0
  as_jsd env JSD_CONFIG=/srv/beta/beta.json jsd-submit -q alpha hello > /dev/null 2>&1 || rc=$?
  [ $rc = 0 ] || fail "beta -> alpha hello exited $rc"
  as_jsd env JSD_CONFIG=/etc/jsd/jsd.conf jsd-ping -c 1 -q beta || fail "jsd-ping beta failed"
  m=$(as_jsd env JSD_CONFIG=/srv/beta/beta.json jsd-listener --metrics) || fail "--metrics failed"
  grep -q '^jsd_jobs_started_total 1$' <<<"$m" || fail "beta's metrics do not count the job"
  say "jsd-ping and jsd-listener --metrics work; beta counted 1 job started"
  exit 0
fi

R=$(mktemp -d /var/tmp/jsd-deb-check.XXXXXX)
cleanup() {
  local rc=$?
  for m in "$R/proc" "$R/dev"; do mountpoint -q "$m" && umount -l "$m"; done
  rm -rf --one-file-system "$R"
  exit $rc
}
trap cleanup EXIT
for t in mmdebstrap unshare chroot; do command -v $t > /dev/null || fail "$t is missing (make -f Makefile.dist deb-check installs it)"; done

# This machine's apt sources (the configured mirror), as they are.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && grep -qv '^\s*\(#.*\)\?$' "$f" && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || fail "no apt sources on this machine"
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
say "mmdebstrap --variant=apt $suite from ${sources[*]}"
mmdebstrap --quiet --variant=apt --skip=cleanup/apt/lists "$suite" "$R" "${sources[@]}" || fail "mmdebstrap failed"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

cp "$DEB" "$R/tmp/"
say "apt-get install ./$(basename "$DEB")"
out=$(cd "$R/tmp" && in_root sh -c "cd /tmp && apt-get install -y -q ./$(basename "$DEB")" 2>&1) ||
  { echo "$out" >&2; fail "apt-get install failed"; }
pub=$(sed -n 's/^  \([A-Za-z0-9+/]\{43\}=\)$/\1/p' <<<"$out")
[ -n "$pub" ] || { echo "$out" >&2; fail "the postinst printed no public key"; }
grep -q "^Setting up jsd " <<<"$out" || fail "jsd was not set up"

# Files, owners, modes.
check() {  # PATH OWNER:GROUP MODE (names in the new root, compared as its ids)
  local got want
  got=$(stat -c '%u:%g %a' "$R$1" 2>/dev/null) || fail "$1 is missing"
  want="$(in_root id -u "${2%:*}"):$(in_root getent group "${2#*:}" | cut -d: -f3) $3"
  [ "$got" = "$want" ] || fail "$1 is $got, expected $want ($2 $3)"
}
for p in jsd-listener jsd-submit jsd-ping; do check /usr/bin/$p root:root 755; done
for p in jsd-client jsd-queue-server jsd-job; do check /usr/libexec/jsd/$p root:root 755; done
for m in man1/jsd-submit.1 man1/jsd-ping.1 man5/jsd.conf.5 man7/jsd.7 man8/jsd-listener.8 man8/jsd-client.8 \
  man8/jsd-queue-server.8 man8/jsd-job.8; do check /usr/share/man/$m.gz root:root 644; done
for p in jsd-listener jsd-submit jsd-ping; do check /usr/share/bash-completion/completions/$p root:root 644; done
unit=/lib/systemd/system/jsd-listener.service
[ -e "$R$unit" ] || unit=/usr/lib/systemd/system/jsd-listener.service
check $unit root:root 644
grep -q '^ExecStart=/usr/bin/jsd-listener -f /etc/jsd/jsd.conf$' "$R$unit" || fail "the unit does not run /usr/bin/jsd-listener"
grep -q '^ConditionPathExists=/etc/jsd/jsd.conf$' "$R$unit" || fail "the unit does not wait for /etc/jsd/jsd.conf"
[ -L "$R/etc/systemd/system/multi-user.target.wants/jsd-listener.service" ] || fail "the unit is not enabled"
check /usr/lib/sysusers.d/jsd.conf root:root 644
check /etc/jsd/jsd.conf.example root:root 644
in_root dpkg-query -W -f='${Conffiles}\n' jsd | grep -q '^ /etc/jsd/jsd.conf.example ' || fail "jsd.conf.example is not a conffile"
[ ! -e "$R/etc/jsd/jsd.conf" ] || fail "the package installed /etc/jsd/jsd.conf: the unit would start unconfigured"
user=$(in_root getent passwd jsd) || fail "no user jsd"
[ "$(cut -d: -f6,7 <<<"$user")" = /var/lib/jsd:/usr/sbin/nologin ] || fail "user jsd: $user"
in_root getent group jsd > /dev/null || fail "no group jsd"
check /etc/jsd/node.key jsd:jsd 600
[ "$(in_root jsd-listener --public-key /etc/jsd/node.key)" = "$pub" ] || fail "the printed public key is not node.key's"
say "files, owners and modes as expected; user jsd; node.key 0600 jsd:jsd, its public key printed; unit enabled, waits for jsd.conf"
# The example's placeholders are mistakes -t reports.
cp "$R/etc/jsd/jsd.conf.example" "$R/etc/jsd/jsd.conf"
if in_root jsd-listener -t -q -f /etc/jsd/jsd.conf 2> "$R/tmp/t.err"; then fail "-t accepted the example's placeholder key"; fi
grep -q "BETA_PUBLIC_KEY" "$R/tmp/t.err" || fail "-t on the example: $(cat "$R/tmp/t.err")"
say "jsd-listener -t on the unedited example: $(head -1 "$R/tmp/t.err")"

# Two nodes: alpha is the package's (/etc/jsd/jsd.conf, /etc/jsd/node.key),
# beta lives in /srv/beta with a key of its own. /var/lib/jsd is what the
# unit's StateDirectory= would make.
install -d -o "$(in_root id -u jsd)" -g "$(in_root id -g jsd)" -m 0700 "$R/var/lib/jsd" "$R/srv/beta" "$R/srv/alpha"
beta_pub=$(chroot --userspec=jsd:jsd "$R" jsd-listener --gen-key /srv/beta/beta.key) || fail "beta's key"
cat > "$R/etc/jsd/jsd.conf" <<EOF
{
  "node": "alpha", "listen": "127.0.0.2:4455", "state_dir": "/var/lib/jsd/alpha", "key_file": "/etc/jsd/node.key",
  "peers": { "beta": { "address": "127.0.0.3:4455", "public_key": "$beta_pub" } },
  "jobs": { "hello": { "command": ["/bin/echo", "hello from alpha"] } }
}
EOF
cat > "$R/srv/beta/beta.json" <<EOF
{
  "node": "beta", "listen": "127.0.0.3:4455", "state_dir": "/srv/beta/state", "key_file": "/srv/beta/beta.key",
  "peers": { "alpha": { "address": "127.0.0.2:4455", "public_key": "$pub" } },
  "jobs": { "hello": { "command": ["/bin/echo", "hello from beta"] } }
}
EOF
chmod 0644 "$R/etc/jsd/jsd.conf" "$R/srv/beta/beta.json"
unshare --net bash "$0" --nodes "$R" || fail "the two nodes"

say "apt-get purge jsd"
in_root apt-get purge -y -q jsd > "$R/tmp/purge.log" 2>&1 || { cat "$R/tmp/purge.log" >&2; fail "apt-get purge failed"; }
for gone in /usr/bin/jsd-listener /usr/libexec/jsd /etc/jsd/node.key /etc/jsd/jsd.conf.example /var/lib/jsd \
  "$unit" /usr/lib/sysusers.d/jsd.conf /etc/systemd/system/multi-user.target.wants/jsd-listener.service; do
  [ ! -e "$R$gone" ] && [ ! -L "$R$gone" ] || fail "$gone is still there after purge"
done
left=$(cd "$R" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./srv -o -path ./tmp \) -prune -o \
  \( -iname '*jsd*' -print \) | sed 's|^\.||' | sort | tr '\n' ' ')
say "left after purge: ${left:-nothing} (expected: /etc/jsd/jsd.conf, which the administrator wrote);" \
  "user jsd: $(in_root getent passwd jsd | cut -d: -f1,6) (system users stay, as Debian does)"
[ "$left" = "/etc/jsd /etc/jsd/jsd.conf " ] || fail "unexpected files after purge: $left"
say "PASS"
