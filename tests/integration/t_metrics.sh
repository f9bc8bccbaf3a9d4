# Metrics (jsd-listener --metrics, metrics_file): the text is checked by an
# independent parser (prometheus_client, and promtool check metrics when
# installed: make -f Makefile.dist deps installs it) and
# its values against what happened: links, jobs that succeeded, failed and
# were refused, a handshake refused for an unknown key (its counter and the
# audit's move together), events queued for a node that is down, the
# file's mode, its updates and its removal at stop.
source "$JSD_TEST_LIB"
CHECK=$(dirname "$JSD_TEST_LIB")/check_metrics.py
PY=python3
"$PY" -c 'import prometheus_client' 2>/dev/null || PY=/usr/bin/python3
if ! "$PY" -c 'import prometheus_client' 2>/dev/null; then
  [ "${CI:-}" = true ] && fail "python3-prometheus-client is missing (make -f Makefile.dist deps installs it)"
  skip "python3-prometheus-client is not installed"
fi
# promtool (Debian's prometheus) checks the text too when it is there
# (check_metrics.py); make -f Makefile.dist deps installs it.
if ! command -v promtool > /dev/null; then
  [ "${CI:-}" = true ] && fail "promtool is missing (make -f Makefile.dist deps installs the package prometheus)"
  log "promtool is not installed: the text is checked by prometheus_client alone"
fi

# metric NODE SERIES...: the values of SERIES in NODE's --metrics, after
# the whole text passed the checks.
metric() {
  local node=$1
  shift
  node_cmd "$node" jsd-listener --metrics > "$T/$node.prom" || fail "$node: --metrics failed"
  "$PY" "$CHECK" "$T/$node.prom" "$@" 2> "$T/check.err" || fail "$node's metrics: $(cat "$T/check.err")"
}
expect() {  # NODE SERIES WANT
  local got
  got=$(metric "$1" "$2")
  [ "$got" = "$3" ] || fail "$1: $2 is $got, expected $3"
}

JOBS='"jobs": {
    "hello": {"command": ["/bin/echo", "hello"]},
    "fails": {"command": ["/bin/sh", "-c", "exit 3"]},
    "local": {"command": ["/bin/true"], "allow": []}
  }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
mkdir -p "$T/textfile"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$JOBS,
  \"metrics_file\": \"$T/textfile/jsd.prom\", \"metrics_interval_s\": 1"
start_node alpha
start_node beta

# Before anything happened: every refusal reason at 0, no job.
expect beta 'jsd_handshakes_refused_total{reason=unknown_key}' 0
expect beta jsd_jobs_started_total 0
expect beta 'jsd_node_info{node=beta,version='"$(jsd-listener -V | awk '{print $NF}')"'}' 1

node_cmd alpha jsd-ping -c 1 -q beta > /dev/null || fail "alpha -> beta failed"
wait_until "beta links back to alpha" link_is_up beta alpha out
node_cmd alpha jsd-submit -q beta hello > /dev/null || fail "hello failed"
rc=0
node_cmd alpha jsd-submit -q beta fails > /dev/null 2>&1 || rc=$?
[ $rc = 3 ] || fail "fails exited $rc, not 3"
rc=0
node_cmd alpha jsd-submit -q beta local > /dev/null 2>&1 || rc=$?
[ $rc = 255 ] || fail "the refused job exited $rc, not 255"

expect beta jsd_jobs_started_total 2
expect beta 'jsd_jobs_ended_total{state=exited,exit_class=ok}' 1
expect beta 'jsd_jobs_ended_total{state=exited,exit_class=failed}' 1
expect beta jsd_job_duration_seconds_count 2
expect beta 'jsd_job_duration_seconds_bucket{le=+Inf}' 2
expect beta jsd_jobs_running 0
expect beta 'jsd_audit_decisions_total{what=job,verdict=allowed}' 2
expect beta 'jsd_audit_decisions_total{what=job,verdict=refused}' 1
expect beta 'jsd_link_up{peer=alpha,direction=out}' 1
expect beta 'jsd_link_up{peer=alpha,direction=in}' 1
expect beta 'jsd_link_state{peer=alpha,direction=out,state=up}' 1
expect beta 'jsd_link_state{peer=alpha,direction=out,state=down}' 0
[ "$(metric beta jsd_handshakes_allowed_total)" -ge 1 ] || fail "beta counted no allowed handshake"
[ "$(metric beta jsd_open_descriptors)" -gt 3 ] || fail "beta's descriptors in use are not counted"
# alpha ran nothing and was refused nothing.
expect alpha jsd_jobs_started_total 0
expect alpha 'jsd_audit_decisions_total{what=job,verdict=refused}' 0

# A refused handshake: a node whose key beta does not know. Its counter
# moves; the refusal is audited apart (audit-refused.log, aggregated per
# source and reason: one line for the first of an interval, so the lines
# do not count the refusals one by one).
refused0=$(metric beta 'jsd_handshakes_refused_total{reason=unknown_key}')
audited0=$(metric beta 'jsd_audit_decisions_total{what=link,verdict=refused}')
make_node delta 127.0.0.5 - '{"beta":"127.0.0.3:4455"}'
start_node delta
node_cmd delta jsd-ping -c 1 -q beta > /dev/null 2>&1 && fail "beta answered delta's ping"
stop_node delta
refused1=$(metric beta 'jsd_handshakes_refused_total{reason=unknown_key}')
[ "$refused1" -gt "$refused0" ] || fail "the refused handshake was not counted ($refused0 -> $refused1)"
# Audited refusals are counted one by one, though their file aggregates them.
audited1=$(metric beta 'jsd_audit_decisions_total{what=link,verdict=refused}')
[ "$((audited1 - audited0))" = "$((refused1 - refused0))" ] ||
  fail "audited link refusals moved $audited0 -> $audited1, refused handshakes $refused0 -> $refused1"
grep -q "key not known for delta" "$T/beta/state/audit-refused.log" ||
  fail "delta's refusal is not in audit-refused.log"

# The textfile collector's file: 0644, whole, updated, gone at stop.
F="$T/textfile/jsd.prom"
wait_until "beta's metrics_file counts the jobs" grep -q '^jsd_jobs_started_total 2$' "$F"
[ "$(stat -c %a "$F")" = 644 ] || fail "metrics_file mode is $(stat -c %a "$F"), not 644"
"$PY" "$CHECK" "$F" > /dev/null 2> "$T/check.err" || fail "metrics_file: $(cat "$T/check.err")"
wait_until "beta's metrics_file counts delta's refusal" \
  grep -q "^jsd_handshakes_refused_total{reason=\"unknown_key\"} $refused1\$" "$F"

# Events for a node that is down wait in alpha's queue, and show.
stop_node beta
[ -e "$F" ] && fail "metrics_file stayed after beta stopped"
node_cmd alpha jsd-submit -q --no-wait beta hello > /dev/null || fail "--no-wait while beta is down failed"
[ "$(metric alpha 'jsd_queued_events{peer=beta}')" -ge 1 ] || fail "alpha shows no event queued for beta"
[ "$(metric alpha 'jsd_queued_bytes{peer=beta}')" -gt 0 ] || fail "alpha shows no bytes queued for beta"
start_node beta
queue_empty() { [ "$(metric alpha 'jsd_queued_events{peer=beta}')" = 0 ]; }
wait_until "alpha's queue to beta drains" queue_empty
wait_until "beta ran the queued job" grep -q '^jsd_jobs_started_total 1$' "$F"
stop_node alpha

# No listener: one line, 255.
rc=0
node_cmd alpha jsd-listener --metrics > /dev/null 2> "$T/err" || rc=$?
[ $rc = 255 ] || fail "--metrics without a listener exited $rc, not 255"
[ "$(wc -l < "$T/err")" = 1 ] && grep -q '^jsd-listener: error: ' "$T/err" || fail "--metrics without a listener: $(cat "$T/err")"
pass
