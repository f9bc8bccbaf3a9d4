#!/bin/sh
# ping-then-submit.sh: run a jsd job on another node from a script or from
# cron, after checking that the node answers at all. Without the check, a
# submission to a node that is down waits in the queue until the node comes
# back (or until --timeout); with it, an unreachable node is reported at once.
#
# Usage: ping-then-submit.sh [-i ID] [-t SECONDS] NODE JOB [K=V]...
#
#   -i ID       submission id (jsd-submit --id): a node runs an id at most
#               once, so a retry with the same id does not run the job again
#   -t SECONDS  give up on the job after this long (jsd-submit --timeout;
#               default 3600)
#   K=V         parameters, passed to the job as JSD_PARAM_K (as data: never
#               through a shell)
#
# The job's output goes to this script's stdout and stderr. Exit status:
#   0    the job succeeded
#   255  jsd failed: the node did not answer, or jsd-submit could not run the
#        job (no local listener, unknown node or job, link refused, job not
#        allowed for this node by its allow list, timeout)
#   N    otherwise the job's own exit status (128+N: killed by signal N)
#
# Example (crontab; note the \% that cron needs):
#   0 3 * * * /usr/local/bin/ping-then-submit.sh -i "backup-$(date +\%F)" beta backup TARGET=/srv/backup
#
# The node configuration is found as by every jsd tool: JSD_CONFIG, else
# /etc/jsd/jsd.conf. jsd-ping and jsd-submit must be in PATH.

set -u

prog=${0##*/}
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
usage() {
    say "usage: $prog [-i ID] [-t SECONDS] NODE JOB [K=V]..."
    exit 255
}

id=
timeout=3600
while getopts i:t: opt; do
    case $opt in
        i) id=$OPTARG ;;
        t) timeout=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
node=$1
job=$2
shift 2

# Turn the remaining K=V arguments into "-p K=V" pairs, keeping every value
# intact (no word splitting, no globbing): rebuild "$@" in place.
n=$#
for kv in "$@"; do
    case $kv in
        [A-Za-z_]*=*) ;;
        *) say "not a parameter K=V: $kv"; exit 255 ;;
    esac
    set -- "$@" -p "$kv"
done
shift "$n"
if [ -n "$id" ]; then
    set -- "$@" --id "$id"
fi

# 1. Does the node answer? One call, at most 5 seconds.
jsd-ping -c 1 -W 5 -q "$node" >/dev/null
rc=$?
case $rc in
    0) ;;
    1) say "$node did not answer within 5 s; $job not submitted"; exit 255 ;;
    *) say "jsd-ping failed (status $rc); $job not submitted"; exit 255 ;;
esac

# 2. Run the job and wait for it.
jsd-submit -q --timeout "$timeout" "$@" "$node" "$job"
rc=$?
case $rc in
    0)   say "$job on $node succeeded" ;;
    255) say "jsd could not run $job on $node (the reason is above)" ;;
    *)   say "$job on $node failed with exit status $rc" ;;
esac
exit "$rc"
