# A link that stays up replaces its keys (Noise Rekey()) in both directions
# every rekey_after_s, and events keep flowing across the changes.
source "$JSD_TEST_LIB"
X='"rekey_after_s": 1, "log_level": "debug"'
make_node alpha 127.0.0.2 - '{"beta":"127.0.0.3:4455"}' "$X"
make_node beta 127.0.0.3 - '{"alpha":"127.0.0.2:4455"}' "$X"
start_node alpha
start_node beta
node_cmd alpha jsd-ping -c 1 -q beta >/dev/null || fail "alpha -> beta failed"
# Heartbeats carry the rekeys on an idle link; wait for three of each kind.
wait_until "QueueClient_beta rekeyed 3 times" grep -q "QueueClient_beta.*link to beta: rekeyed (3)" "$T/alpha.log"
wait_until "QueueServer_alpha rekeyed 3 times" grep -q "QueueServer_alpha.*link from alpha: rekeyed (3)" "$T/beta.log"
node_cmd alpha jsd-ping -c 20 -i 0.05 -q beta >/dev/null || fail "pings across rekeys failed"
node_cmd beta jsd-ping -c 5 -i 0.01 -q alpha >/dev/null || fail "beta -> alpha across rekeys failed"
grep -q "failed authentication" "$T"/*.log && fail "a frame failed to open after a rekey"
[ "$(link_state alpha beta out)" = up ] || fail "alpha's link went down"
# The frame budget (rekey_after_frames, 2^20 by default, 16 here) with
# rekey_after_s out of reach: only the frame count can make these rekeys.
stop_node alpha
stop_node beta
F='"rekey_after_s": 86400, "rekey_after_frames": 16, "log_level": "debug"'
make_node gamma 127.0.0.4 - '{"delta":"127.0.0.5:4455"}' "$F"
make_node delta 127.0.0.5 - '{"gamma":"127.0.0.4:4455"}' "$F"
start_node gamma
start_node delta
node_cmd gamma jsd-ping -c 1 -q delta >/dev/null || fail "gamma -> delta failed"
node_cmd gamma jsd-ping -c 60 -i 0.01 -q delta >/dev/null || fail "pings across frame-count rekeys failed"
wait_until "QueueClient_delta rekeyed 3 times by frame count" grep -q "QueueClient_delta.*link to delta: rekeyed (3)" "$T/gamma.log"
wait_until "QueueServer_gamma rekeyed 3 times by frame count" grep -q "QueueServer_gamma.*link from gamma: rekeyed (3)" "$T/delta.log"
grep -q "failed authentication" "$T"/*.log && fail "a frame failed to open after a rekey"
pass "rekeys by time (1 s) and by frame count (16 frames) in both directions"
