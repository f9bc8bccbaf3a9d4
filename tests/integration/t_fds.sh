# Descriptors are capabilities: a listener started from a shell with stray
# descriptors open (7 and 251 here, on files of their own) hands none of
# them, nor any of its own, to a job (which sees 0, 1, 2 and the directory
# ls itself opens) or to its link processes (which share no file or socket
# with the listener: each has only its own end of what it was handed).
source "$JSD_TEST_LIB"
JOBS='"jobs": { "fds": { "command": ["/bin/ls", "/proc/self/fd"] } }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS"
: > "$T/stray7"
: > "$T/stray251"
exec 7<"$T/stray7" 251<"$T/stray251"
start_node alpha
start_node beta
exec 7<&- 251<&-
ls "/proc/${NODE_PID[beta]}/fd" | grep -qx 251 || fail "the test did not give the listener descriptor 251"

out=$(JSD_CONFIG="$T/alpha.json" jsd-submit -q beta fds) || fail "fds job failed: $out"
[ "$(echo $out)" = "0 1 2 3" ] || fail "the job had descriptors $(echo $out), not 0 1 2 (and ls's own 3)"

# fd_targets PID: "fd target" lines for every descriptor of PID.
fd_targets() {
  local f
  for f in /proc/$1/fd/*; do printf '%s %s\n' "${f##*/}" "$(readlink "$f")"; done
}
# Each link process: no stray file, and beyond 0-2 no file, pipe or socket
# that its listener holds too. (/dev/null is left out: libuv keeps one open
# in every process, as a descriptor to give back when accept() hits EMFILE.)
check_links() {
  local node=$1 lpid=${NODE_PID[$1]} pid n=0 shared
  fd_targets "$lpid" | awk '{print $2}' | grep -v '^/dev/null$' | sort -u > "$T/listener.fds"
  for pid in $(pgrep -P "$lpid"); do
    n=$((n + 1))
    fd_targets "$pid" > "$T/child.fds"
    grep -q "$T/stray" "$T/child.fds" && fail "$node's child $(ps -o args= "$pid") has a stray descriptor: $(cat "$T/child.fds")"
    # 1 and 2 are the listener's own, as they should be.
    shared=$(awk '$1 > 2 && $2 !~ /^anon_inode:/ && $2 != "/dev/null" {print $2}' "$T/child.fds" | sort -u |
      comm -12 - "$T/listener.fds")
    [ -z "$shared" ] || fail "$node's child $(ps -o args= "$pid") shares $shared with its listener: $(cat "$T/child.fds")"
  done
  [ $n -ge 2 ] || fail "$node has $n link processes, expected a client and a queue-server"
}
check_links alpha
check_links beta
pass
