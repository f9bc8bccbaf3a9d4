# Start-up and shutdown: config checks (jsd-listener -t), key file rules,
# port in use, a second listener; SIGTERM leaves no child and no socket;
# connect_at_startup brings links up before any event.
source "$JSD_TEST_LIB"
gen_key "$T/cluster.key"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' '"connect_at_startup": ["beta"]'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}'

# -t prints the effective config and checks the key.
node_cmd alpha jsd-listener -t > "$T/eff.json" || fail "-t rejected a good config"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["port_range"]==[50000,59999] and d["heartbeat_ms"]==200' "$T/eff.json" ||
  fail "-t output: $(cat "$T/eff.json")"
# Every mistake in one pass: the file's keys, the key file, a job's env
# naming a JSD_* variable, a job's cwd that is missing or not a directory.
cat > "$T/bad.json" <<EOC
{"nod": "x", "listen": "127.0.0.2", "port_range": [2, 1], "peers": {"b": "nowhere:1"},
 "key_file": "$T/missing.key", "state_dir": "$T/bad",
 "jobs": {"e": {"command": ["/bin/true"], "env": {"JSD_NODE": "fake"}},
          "gone": {"command": ["/bin/true"], "cwd": "$T/nowhere"},
          "file": {"command": ["/bin/true"], "cwd": "$T/bad.json"}}}
EOC
jsd-listener -t -f "$T/bad.json" 2> "$T/err"; rc=$?
[ $rc = 1 ] || fail "bad config: exit $rc"
for e in "unknown key 'nod'" "listen: " "port_range: " "peers.b: " "$T/missing.key" \
  "jobs.e.env: 'JSD_NODE' is reserved" "jobs.gone.cwd: '$T/nowhere' does not exist" \
  "jobs.file.cwd: '$T/bad.json' is not a directory"; do
  grep -qF "$e" "$T/err" || fail "-t did not report '$e': $(cat "$T/err")"
done
[ "$(grep -c '^jsd-listener: error: ' "$T/err")" = 8 ] || fail "expected 8 error lines: $(cat "$T/err")"
# The listener itself refuses to start with such a file.
jsd-listener -f "$T/bad.json" 2> "$T/err2"; rc=$?
[ $rc = 1 ] && grep -q "jobs.e.env: 'JSD_NODE' is reserved" "$T/err2" || fail "the listener started: $rc $(cat "$T/err2")"
echo '{"node": ' > "$T/broken.json"
jsd-listener -t -f "$T/broken.json" 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "not valid JSON" "$T/err" || fail "broken JSON: $rc $(cat "$T/err")"

# Key file rules.
jsd-listener --gen-key "$T/cluster.key" 2> "$T/err" && fail "--gen-key overwrote a key"
grep -q "refusing to overwrite" "$T/err" || fail "unclear: $(cat "$T/err")"
[ "$(stat -c %a "$T/cluster.key")" = 600 ] || fail "key mode is not 600"
cp "$T/cluster.key" "$T/open.key"; chmod 644 "$T/open.key"
make_node open 127.0.0.5 "$T/open.key" '{}'
node_cmd open jsd-listener 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "accessible by group or others (mode 0644); run: chmod 600" "$T/err" || fail "open key: $rc $(cat "$T/err")"

# Links at start-up: beta first, then alpha connects to it on its own.
start_node beta
start_node alpha
wait_until "alpha -> beta is up without any event" link_is_up alpha beta out
wait_until "beta -> alpha is up without any event" link_is_up beta alpha out

# Port in use, and a second listener on the same state dir.
make_node clash 127.0.0.3 - '{}'
node_cmd clash jsd-listener 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "cannot listen on 127.0.0.3:4455: address already in use" "$T/err" || fail "port clash: $rc $(cat "$T/err")"
node_cmd beta jsd-listener 2> "$T/err"; rc=$?
[ $rc = 1 ] && grep -q "another jsd-listener is running" "$T/err" || fail "second listener: $rc $(cat "$T/err")"

# SIGTERM: every child goes, the control socket goes, exit 0.
pid=${NODE_PID[alpha]}
kids=$(children_of "$pid")
[ -n "$kids" ] || fail "alpha has no children"
kill -TERM "$pid"
wait "$pid"; rc=$?
unset "NODE_PID[alpha]"
[ $rc = 0 ] || fail "listener exit status after SIGTERM: $rc"
for k in $kids; do kill -0 "$k" 2>/dev/null && fail "child $k survived its listener"; done
[ -e "$T/alpha/state/control.sock" ] && fail "control socket left behind"
[ -z "$(pgrep -f "$T/alpha.json")" ] || fail "processes of alpha remain: $(pgrep -af "$T/alpha.json")"
# beta notices: its link to alpha goes down, and it keeps running.
alpha_gone() { [ -z "$(link_state beta alpha in)" ] && [ "$(link_state beta alpha out)" != up ]; }
wait_until "beta sees alpha go" alpha_gone
kill -0 "${NODE_PID[beta]}" || fail "beta died"
pass
