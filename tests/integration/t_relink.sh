# Links come back promptly after a peer restarts, even with a long backoff
# (60 s here): a sign of life from the peer (its link to us) ends our
# client's backoff at once, and so does a new event for the peer.
source "$JSD_TEST_LIB"
X='"reconnect_min_ms": 60000, "reconnect_max_ms": 60000, "dead_after_ms": 1000'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' "$X"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$X, \"connect_at_startup\": [\"alpha\"]"
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta failed"

# 1. beta restarts and links to alpha (connect_at_startup): alpha's client
# to beta, which would otherwise wait out 45-75 s, comes back at once
# although alpha has nothing to send.
stop_node beta
link_down() { [ "$(link_state alpha beta out)" != up ]; }
wait_until "alpha sees beta go" link_down
start_node beta
wait_until "alpha's link to beta is up again" link_is_up alpha beta out

# 2. beta restarts again, this time without linking to alpha by itself;
# alpha wants it first: its ping goes out at once instead of after the
# backoff.
stop_node beta
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$X"
wait_until "alpha sees beta go again" link_down
start_node beta
node_cmd alpha jsd-ping -c 1 -W 5 -q beta >/dev/null || fail "alpha's first ping after beta's restart waited out the backoff"
pass
