// jsd-submit on a target set (NODE,NODE..., @GROUP, @all): the job runs on
// every target at once, at most --fanout (and --batch) at a time, over the
// node's existing links, all from this one process and one control
// connection. Per node: its output prefixed "NODE: " (or gathered), its
// end or its jsd error; then a summary; the exit status is the highest.
#pragma once

#include <string>
#include <vector>

#include "submit.h"
#include "targets.h"

namespace jsd {

// Exit status: the highest among the nodes (a job's own status, 254 for an
// outcome jsd cannot know, 255 when jsd failed for a target); 128+N after
// signal N.
int run_fanout(const SubmitOptions& o, const std::vector<TargetEntry>& targets);

// The submission id that --id ID gives node in a set: "ID.NODE", or, when
// that is longer than a name may be (64), "ID." and 16 hex digits of the
// BLAKE2b hash of NODE. The same for every retry: idempotent per node.
std::string derived_id(const std::string& id, const std::string& node);

// The error_kind of --json for a jsd failure: unknown_node, unreachable,
// timeout, refused, lost.
enum class FailKind { none, unknown_node, unreachable, timeout, refused, lost };
const char* fail_kind_name(FailKind k);

}  // namespace jsd
