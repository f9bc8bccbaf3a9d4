# make install: the programs people run in bin/, jsd-client and
# jsd-queue-server in libexec/jsd/ (GNUInstallDirs), the man pages, the bash
# completion under each program's name; and the installed listener starts
# its link processes from libexec/jsd, also installed under DESTDIR and
# another prefix than the one compiled in.
source "$JSD_TEST_LIB"
BUILD=$JSD_BIN/..
[ -f "$BUILD/cmake_install.cmake" ] || skip "no CMake build tree at $BUILD"
root=$T/root
prefix=/opt/jsd-test
DESTDIR=$root cmake --install "$BUILD" --prefix "$prefix" > "$T/install.log" 2>&1 || fail "install failed: $(tail "$T/install.log")"
P=$root$prefix
for f in bin/jsd-listener bin/jsd-submit bin/jsd-ping libexec/jsd/jsd-client libexec/jsd/jsd-queue-server libexec/jsd/jsd-job; do
  [ -x "$P/$f" ] || fail "not installed: $prefix/$f ($(cd "$root" && find . -type f | sort | tr '\n' ' '))"
done
for f in bin/jsd-client bin/jsd-queue-server bin/jsd-job; do
  [ -e "$P/$f" ] && fail "an internal program is on PATH: $prefix/$f"
done
for m in man1/jsd-submit.1 man1/jsd-ping.1 man5/jsd.conf.5 man7/jsd.7 man8/jsd-listener.8 man8/jsd-client.8 man8/jsd-job.8; do
  [ -f "$P/share/man/$m" ] || fail "man page not installed: $m"
done
for p in jsd-listener jsd-submit jsd-ping jsd-client jsd-queue-server; do
  c=$(find "$root" -path "*/bash-completion/completions/$p" -type f)
  [ -n "$c" ] || fail "no bash completion installed for $p"
  bash --norc --noprofile -c 'source "$1" && complete -p "$2"' bash "$c" "$p" > /dev/null || fail "completion $c does not register $p"
done

# The installed listener, not the build tree's, finds its link programs
# beside it in ../libexec/jsd (the prefix compiled in is another one).
unset JSD_LIBEXEC_DIR
export PATH="$P/bin:$PATH"
[ "$(command -v jsd-listener)" = "$P/bin/jsd-listener" ] || fail "PATH: $(command -v jsd-listener)"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' '"connect_at_startup": ["beta"]'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}'
start_node beta
start_node alpha
wait_until "alpha -> beta is up" link_is_up alpha beta out
wait_until "beta -> alpha is up" link_is_up beta alpha out
exes=""
for p in $(children_of "${NODE_PID[alpha]}"); do exes+="$(readlink "/proc/$p/exe") "; done
case " $exes " in *" $P/libexec/jsd/jsd-client "*) ;; *) fail "alpha's jsd-client is not from libexec: $exes" ;; esac
# The link spawner (jsd-client --spawner) forks the queue-servers too, so
# their executable is libexec's jsd-client; with the spawner off they are
# started by exec from libexec's jsd-queue-server.
for e in $exes; do
  case "$e" in "$P/libexec/jsd/"*) ;; *) fail "alpha's children are not all from libexec: $exes" ;; esac
done
n=0
for p in $(children_of "${NODE_PID[alpha]}"); do
  case "$(tr '\0' ' ' <"/proc/$p/cmdline")" in QueueServer_beta*) n=$((n + 1)) ;; esac
done
[ "$n" = 1 ] || fail "alpha has $n QueueServer_beta processes, not 1: $exes"
node_cmd alpha jsd-ping -c 1 -q beta > /dev/null || fail "ping over the installed programs failed"
pass
