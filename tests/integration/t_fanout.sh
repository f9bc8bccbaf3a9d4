# One command, many nodes: target sets (lists, @groups, @all, mixed) in
# jsd-submit and jsd-ping, prefixed and gathered output, the exit status,
# JSON Lines, --no-wait to a node that is down, rolling runs, --history,
# --jobs and the idle peers of --status.
source "$JSD_TEST_LIB"
JOBS=$(cat <<'EOJ'
"jobs": {
    "hello":  { "command": ["/bin/sh", "-c", "echo same; echo \"node $JSD_NODE\"; echo \"warn $JSD_NODE\" >&2"], "description": "says hello" },
    "same":   { "command": ["/bin/sh", "-c", "echo same; echo \"warn $JSD_NODE\" >&2"] },
    "code":   { "command": ["/bin/sh", "-c", "case $JSD_NODE in gamma) exit 3;; delta) exit 5;; esac; exit 0"] },
    "append": { "command": ["/bin/sh", "-c", "echo \"$JSD_JOB_ID\" >> \"$JSD_PARAM_DIR/$JSD_NODE.nw\""] },
    "secret": { "command": ["/bin/true"], "allow": ["beta"] },
    "webonly": { "command": ["/bin/true"], "allow": ["@friends"] }
  }
EOJ
)
ALL='"alpha":"127.0.0.2:4455","beta":"127.0.0.3:4455","gamma":"127.0.0.4:4455","delta":"127.0.0.5:4455"'
peers_of() { echo "{$ALL}" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop(sys.argv[1]); print(json.dumps(d))' "$1"; }
make_node alpha 127.0.0.2 - "$(peers_of alpha)" '"groups": {"web": ["beta", "gamma"], "empty": [], "loop": ["loop", "beta"]}'
for n in beta gamma delta; do
  ip=$(echo "{$ALL}" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]].split(":")[0])' $n)
  make_node $n "$ip" - "$(peers_of $n)" "$JOBS, \"groups\": {\"friends\": [\"alpha\"]}"
done
for n in alpha beta gamma delta; do start_node $n; done
sub() { JSD_CONFIG="$T/alpha.json" jsd-submit "$@"; }
ping_() { JSD_CONFIG="$T/alpha.json" jsd-ping "$@"; }

# Before any call, every configured peer is listed, with no link: idle.
node_cmd alpha jsd-listener --status > "$T/status.txt" || fail "--status failed"
for n in beta gamma delta; do
  grep -Eq "^$n +127\.0\.0\.[0-9]+:4455 +config +idle" "$T/status.txt" || fail "$n not idle in --status: $(cat "$T/status.txt")"
done
node_cmd alpha jsd-listener --status --json | python3 -c '
import json,sys; d=json.load(sys.stdin); p={x["peer"]: x for x in d["peers"]}
assert sorted(p) == ["beta","delta","gamma"] and all(x["state"]=="idle" for x in p.values()), p
assert p["beta"]["groups"] == ["loop","web"], p' || fail "--status --json peers"

# A list: every line prefixed, stdout and stderr apart; a summary on stderr.
sub beta,gamma hello > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 0 ] || fail "list: rc $rc: $(cat "$T/err")"
[ "$(sort "$T/out")" = "$(printf 'beta: node beta\nbeta: same\ngamma: node gamma\ngamma: same')" ] || fail "list stdout: $(cat "$T/out")"
grep -qx "beta: warn beta" "$T/err" && grep -qx "gamma: warn gamma" "$T/err" || fail "list stderr: $(cat "$T/err")"
grep -qx "jsd-submit: 2 nodes: 2 ok, 0 failed" "$T/err" || fail "no summary: $(cat "$T/err")"
# Each node's lines in its own order.
[ "$(grep '^beta:' "$T/out")" = "$(printf 'beta: same\nbeta: node beta')" ] || fail "beta's order: $(cat "$T/out")"

# @group, @all, mixed, duplicates once.
sub -q @web hello > "$T/out" 2>/dev/null || fail "@web failed"
[ "$(cut -d: -f1 "$T/out" | sort -u | tr '\n' ' ')" = "beta gamma " ] || fail "@web ran on: $(cat "$T/out")"
sub -q @all hello > "$T/out" 2>/dev/null || fail "@all failed"
[ "$(cut -d: -f1 "$T/out" | sort -u | tr '\n' ' ')" = "beta delta gamma " ] || fail "@all ran on: $(cat "$T/out")"
sub -q delta,@web,beta,beta,127.0.0.3:4455 hello > "$T/out" 2>/dev/null || fail "mixed failed"
[ "$(grep -c ': same$' "$T/out")" = 3 ] || fail "mixed with duplicates: $(cat "$T/out")"

# --gather: each distinct output once, headed by its nodes.
sub -q --gather @all same > "$T/out" 2> "$T/err" || fail "--gather failed"
grep -qx "beta,delta,gamma" "$T/out" || fail "--gather head: $(cat "$T/out")"
[ "$(grep -c '^same$' "$T/out")" = 1 ] || fail "--gather repeated the common output: $(cat "$T/out")"
grep -qx "warn gamma" "$T/err" || fail "--gather stderr: $(cat "$T/err")"

# The exit status is the highest; the summary names the failed nodes.
sub @all code > /dev/null 2> "$T/err"; rc=$?
[ $rc = 5 ] || fail "highest exit status: $rc"
grep -qx "jsd-submit:   gamma: exit status 3" "$T/err" && grep -qx "jsd-submit:   delta: exit status 5" "$T/err" ||
  fail "summary: $(cat "$T/err")"

# One unknown target: 255, and the others still ran.
sub beta,nosuch,gamma,@nogroup hello > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "unknown target gave $rc"
[ "$(grep -c ': same$' "$T/out")" = 2 ] || fail "the known targets did not run: $(cat "$T/out")"
grep -q "^jsd-submit: nosuch: error: unknown node 'nosuch'" "$T/err" || fail "unknown node: $(cat "$T/err")"
grep -q "^jsd-submit: @nogroup: error: unknown group 'nogroup'" "$T/err" || fail "unknown group: $(cat "$T/err")"
# A group that names itself, an empty group, a trailing comma, 10,000 names.
sub -q @loop hello > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -qx "beta: same" "$T/out" && grep -q "loop: error: unknown node 'loop'" "$T/err" || fail "@loop: $rc $(cat "$T/err")"
sub @empty hello 2> "$T/err"; rc=$?
[ $rc = 255 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "names no node" "$T/err" || fail "@empty: $rc $(cat "$T/err")"
sub beta, hello 2> "$T/err"; rc=$?
[ $rc = 255 ] && grep -q "empty name in target set" "$T/err" || fail "trailing comma: $rc $(cat "$T/err")"
many=$(seq -f 'n%g' 1 10000 | paste -sd,)
sub "$many" hello 2> "$T/err"; rc=$?
[ $rc = 255 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "at most 4096" "$T/err" || fail "10000 names: $rc $(head -3 "$T/err")"

# JSON Lines: one object per node, node and exit_status in each; a jsd
# failure has an error_kind.
sub --json @web,nosuch code > "$T/out" 2>/dev/null; rc=$?
[ $rc = 255 ] || fail "--json rc $rc"
python3 - "$T/out" <<'EOP' || fail "JSON Lines: $(cat "$T/out")"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
by = {o["node"]: o for o in objs}
assert sorted(by) == ["beta", "gamma", "nosuch"], by
assert by["beta"]["exit_status"] == 0 and by["gamma"]["exit_status"] == 3, by
assert by["nosuch"]["error_kind"] == "unknown_node" and by["nosuch"]["exit_status"] == 255, by
assert by["beta"]["state"] == "exited", by
EOP

# --id with several targets: ID.NODE per node; a retry runs nothing again.
sub -q --json --id fan1 beta,gamma hello > "$T/out" || fail "--id run failed"
grep -q '"id":"fan1.beta"' "$T/out" && grep -q '"id":"fan1.gamma"' "$T/out" || fail "derived ids: $(cat "$T/out")"
sub -q --json --id fan1 beta,gamma hello > "$T/out" || fail "--id retry failed"
[ "$(grep -c '"duplicate":true' "$T/out")" = 2 ] || fail "the retry ran again: $(cat "$T/out")"

# Rolling: one at a time, stop after the first failure.
sub --batch 1 --max-failures 1 gamma,delta,beta code > /dev/null 2> "$T/err"; rc=$?
[ $rc = 3 ] || fail "--max-failures rc $rc"
grep -q "delta: not started" "$T/err" && grep -q "beta: not started" "$T/err" || fail "not started: $(cat "$T/err")"
grep -q "3 nodes: 0 ok, 1 failed, 2 not started" "$T/err" || fail "rolling summary: $(cat "$T/err")"

# Which nodes are up: delta is down; jsd-ping says so and exits 1.
ping_ -c 1 -W 1 @all > "$T/out" 2>&1 || fail "ping @all with every node up: $(cat "$T/out")"
stop_node delta
ping_ -c 1 -W 1 @all > "$T/out" 2>&1; rc=$?
[ $rc = 1 ] || fail "ping with delta down gave $rc: $(cat "$T/out")"
grep -q "^delta: 1 sent, 0 received, 100% lost" "$T/out" || fail "delta's line: $(cat "$T/out")"
grep -q "^beta: 1 sent, 1 received" "$T/out" && grep -q "^2 of 3 nodes answered" "$T/out" || fail "ping summary: $(cat "$T/out")"
ping_ -c 1 beta,nosuch > "$T/out" 2>&1; rc=$?
[ $rc = 255 ] || fail "ping of an unknown node gave $rc"
ping_ -c 1 --json beta,gamma > "$T/out" || fail "ping --json"
[ "$(python3 -c 'import json,sys; print(sorted(json.loads(l)["node"] for l in open(sys.argv[1])))' "$T/out")" = "['beta', 'gamma']" ] || fail "ping JSON Lines: $(cat "$T/out")"

# A node that is down mid-fan-out: its line says so, the others are unaffected.
sub --timeout 2 @all hello > "$T/out" 2> "$T/err"; rc=$?
[ $rc = 255 ] || fail "with delta down: rc $rc"
[ "$(grep -c ': same$' "$T/out")" = 2 ] || fail "the others did not run: $(cat "$T/out")"
grep -q "jsd-submit:   delta: unreachable: no answer from delta within 2 s" "$T/err" || fail "delta's summary: $(cat "$T/err")"

# --no-wait to several nodes, one down: NODE ID per target; delivered once
# when delta comes up.
sub --no-wait -p DIR="$T" beta,delta append > "$T/nw.out" || fail "--no-wait failed"
[ "$(cut -d' ' -f1 "$T/nw.out" | tr '\n' ' ')" = "beta delta " ] || fail "--no-wait lines: $(cat "$T/nw.out")"
did=$(awk '$1=="delta"{print $2}' "$T/nw.out")
wait_until "beta ran its --no-wait job" test -s "$T/beta.nw"
[ -e "$T/delta.nw" ] && fail "delta ran while down"
start_node delta
wait_until "delta ran its --no-wait job" test -s "$T/delta.nw"
# Once: after a later job on delta has run, still one line.
sub -q delta hello > /dev/null || fail "delta after restart"
[ "$(cat "$T/delta.nw")" = "$did" ] || fail "delta's --no-wait job: $(cat "$T/delta.nw") (want $did)"

# --history: the caller's last jobs, newest first, also after a restart.
for i in 1 2 3; do sub -q --id hist-$i beta code || fail "hist-$i"; done
sub --history beta -n 2 --json > "$T/h.json" || fail "--history failed"
[ "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["id"] for l in open(sys.argv[1])))' "$T/h.json")" = "hist-3 hist-2" ] ||
  fail "--history -n 2: $(cat "$T/h.json")"
stop_node beta
start_node beta
sub --history beta > "$T/h.txt" || fail "--history after a restart"
grep -Eq "^hist-1 +code +exited +0 " "$T/h.txt" || fail "--history text after restart: $(cat "$T/h.txt")"
# Another node's jobs are not shown: beta submits one to gamma; alpha's
# history of gamma does not list it.
node_cmd beta jsd-submit -q --id from-beta gamma hello > /dev/null 2>&1 || fail "beta -> gamma"
sub --history gamma --json > "$T/h.json" || fail "--history gamma"
grep -q from-beta "$T/h.json" && fail "alpha saw beta's job in --history"

# --jobs: what alpha may run there (per-job allow honoured), with descriptions.
sub --jobs beta > "$T/j.txt" || fail "--jobs failed"
grep -Eq "^hello .* says hello$" "$T/j.txt" || fail "--jobs text: $(cat "$T/j.txt")"
grep -q "^secret " "$T/j.txt" && fail "--jobs lists a job alpha may not run"
grep -q "^webonly " "$T/j.txt" || fail "--jobs misses a job allowed to @friends: $(cat "$T/j.txt")"
node_cmd gamma jsd-submit --jobs --json beta > "$T/j.json" || fail "--jobs --json from gamma"
python3 -c 'import json,sys; n=[json.loads(l)["name"] for l in open(sys.argv[1])]; assert n == ["append","code","hello","same"], n' "$T/j.json" ||
  fail "--jobs for gamma: $(cat "$T/j.json")"

pass
