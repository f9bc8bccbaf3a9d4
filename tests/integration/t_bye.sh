# A listener that stops says so to its peers ("bye" on each link): they log
# one line each, not a failure, and do not retry until it shows a sign of
# life or they have something for it; then the link is back at once.
source "$JSD_TEST_LIB"
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}'
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' '"connect_at_startup": ["alpha"]'
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta failed"
wait_until "beta's link to alpha is up" link_is_up beta alpha out
before=$(wc -l < "$T/alpha.log")

stop_node beta
ended() { tail -n +$((before + 1)) "$T/alpha.log" | grep -q "$1"; }
wait_until "alpha's client hears beta's bye" ended "link to beta ended: beta is stopping"
wait_until "alpha's queue-server hears beta's bye" ended "link from beta ended: beta is stopping"
# Something for beta while it is away: one eager attempt, refused by the
# kernel, is not worth a warning (beta said it would be gone).
node_cmd alpha jsd-ping -c 1 -W 1 -q beta >/dev/null 2>&1 && fail "a ping to a stopped node answered"
new=$(tail -n +$((before + 1)) "$T/alpha.log")
echo "$new" | grep -E " (warn|error): " && fail "alpha logged a warning for a peer that said bye"
[ "$(echo "$new" | grep -c "beta is stopping")" = 2 ] || fail "expected one line per link about beta stopping: $new"

# beta returns and links to alpha: alpha's client comes back at once.
start_node beta
wait_until "alpha's link to beta is up again" link_is_up alpha beta out
node_cmd alpha jsd-ping -c 1 -W 5 -q beta >/dev/null || fail "alpha -> beta after beta's return failed"
grep -q "Sanitizer\|Assertion" "$T"/*.log && fail "a daemon reported an error"
pass
