# SIGHUP re-reads the configuration: a job and a peer added take effect, a
# removed peer's links close, a link to a peer that stayed is not touched
# (same client process), and a file with mistakes is refused line by line
# while the running configuration stays (also for a link process started
# after it).
source "$JSD_TEST_LIB"
JOB_ADDED='"jobs": { "added": { "command": ["/bin/echo", "added"] } }'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","gamma":"127.0.0.4:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}'
make_node gamma 127.0.0.4 - '{"alpha":"127.0.0.2:4455"}'
make_node delta 127.0.0.5 - '{"alpha":"127.0.0.2:4455"}'
start_node alpha
start_node beta
start_node gamma
start_node delta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "ping beta failed"
node_cmd alpha jsd-ping -c 1 -q gamma >/dev/null || fail "ping gamma failed"
node_cmd beta jsd-submit -q alpha added 2>/dev/null && fail "job 'added' ran before it was added"
client_of() { pgrep -f "^QueueClient_$1 --config $T/alpha.json"; }
server_of() { pgrep -f "^QueueServer_$1 --config $T/alpha.json"; }
beta_client=$(client_of beta)
[ -n "$beta_client" ] && [ -n "$(client_of gamma)" ] && [ -n "$(server_of gamma)" ] ||
  fail "links not up: $(ps -eo args | grep Queue)"

# reloads N: waits until alpha logged its Nth reload.
reloads() { [ "$(grep -c "configuration reloaded from $T/alpha.json" "$T/alpha.log")" -ge "$1" ]; }
# gamma out, delta in, a job added.
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455","delta":"127.0.0.5:4455"}' "$JOB_ADDED"
kill -HUP "${NODE_PID[alpha]}"
wait_until "alpha reloads" reloads 1
out=$(node_cmd beta jsd-submit -q alpha added) || fail "the added job did not run: $out"
[ "$out" = added ] || fail "the added job said $out"
node_cmd alpha jsd-ping -c 1 -q delta >/dev/null || fail "ping to the added peer failed"
gamma_gone() { [ -z "$(client_of gamma)" ] && [ -z "$(server_of gamma)" ]; }
wait_until "gamma's links close" gamma_gone
out=$(node_cmd alpha jsd-ping -c 1 -q gamma 2>&1) && fail "gamma is still a peer: $out"
[ "$(client_of beta)" = "$beta_client" ] || fail "beta's link was torn down (client $beta_client, now $(client_of beta))"
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "ping beta after the reload failed"

# A file with two mistakes: refused, one line each, the running one stays.
cp "$T/alpha.json" "$T/alpha.good"
sed -i 's/"heartbeat_ms": 200/"heartbeat_ms": 200, "job_kill_grace_s": -1, "no_such_key": 1/' "$T/alpha.json"
kill -HUP "${NODE_PID[alpha]}"
refused() { grep -q "SIGHUP: configuration not reloaded (2 mistakes); the running one stays" "$T/alpha.log"; }
wait_until "alpha refuses the bad file" refused
grep -q "SIGHUP: $T/alpha.json: unknown key 'no_such_key'" "$T/alpha.log" || fail "no line for the unknown key"
grep -q "SIGHUP: $T/alpha.json: job_kill_grace_s: " "$T/alpha.log" || fail "no line for the bad job_kill_grace_s"
out=$(node_cmd beta jsd-submit -q alpha added) || fail "the job went with the refused file: $out"
[ "$(client_of beta)" = "$beta_client" ] || fail "beta's link was torn down by a refused reload"
reloads 2 && fail "the bad file counted as reloaded"
# (The tools read the file too: this one is given the good copy.)
JSD_CONFIG="$T/alpha.good" jsd-ping -c 1 -q beta >/dev/null || fail "ping beta after the refused reload failed"

# A link process started after the refused reload reads the listener's
# running configuration, not the bad file: beta's client, killed, comes
# back and links.
kill -9 "$beta_client"
new_client() { c=$(client_of beta) && [ -n "$c" ] && [ "$c" != "$beta_client" ]; }
wait_until "alpha starts beta's client again" new_client
tr '\0' ' ' < "/proc/$(client_of beta)/cmdline" | grep -q -- "--running-config $T/alpha/state/config.running" ||
  fail "the new client does not read the running copy: $(tr '\0' ' ' < "/proc/$(client_of beta)/cmdline")"
JSD_CONFIG="$T/alpha.good" jsd-ping -c 1 -q -W 20 beta >/dev/null ||
  fail "beta's new client did not link under the running configuration: $(grep QueueClient_beta "$T/alpha.log" | tail -3)"
pass
