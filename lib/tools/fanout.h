// jsd-submit on a target set (NODE,NODE..., @GROUP, @all): the job runs on
// every target at once, at most --fanout (and --batch) at a time, over the
// node's existing links, all from this one process and one control
// connection. Per node: its output prefixed "NODE: " (or gathered), its
// end or its jsd error; then a summary; the exit status is the highest.
#pragma once

#include <uv.h>

#include <string>
#include <vector>

#include "job_wire.h"
#include "submit.h"
#include "targets.h"

namespace jsd {

// Exit status: the highest among the nodes (a job's own status, 254 for an
// outcome jsd cannot know, 255 when jsd failed for a target); 128+N after
// signal N.
int run_fanout(const SubmitOptions& o, const std::vector<TargetEntry>& targets);

// The same on loop, through channel (the seam: a test's fake; null for the
// real control connection), which the caller's loop runs.
class ControlChannel;
int run_fanout_on(uv_loop_t* loop, const SubmitOptions& o, const std::vector<TargetEntry>& targets,
                  ControlChannel* channel);

// A node's exit status in a set, and whose it is (job_wire.h).
struct NodeStatus {
  int code = 0;
  ExitFrom from = ExitFrom::job;
  bool unknowable() const;  // 254 from jsd: whether the job ran cannot be known
};

// The exit status of a set from those of its nodes that ended (not those
// never started): 254 when any node's outcome cannot be known (so that 255
// still means, for the nodes it comes from, that the job did not run),
// else the highest.
int fanout_exit_status(const std::vector<NodeStatus>& ended);

// "exit status N" for the summary, saying whose a 254 or 255 is: "(the
// job's own)", "(jsd's: the job did not run)", "(jsd's: the outcome cannot
// be known)".
std::string status_summary(const NodeStatus& s);

// The submission id that --id ID gives node in a set: "ID.NODE", or, when
// that is longer than a name may be (64), "ID." and 16 hex digits of the
// BLAKE2b hash of NODE. The same for every retry: idempotent per node.
std::string derived_id(const std::string& id, const std::string& node);

// The error_kind of --json for a jsd failure: unknown_node, unreachable,
// timeout, refused, lost (the contact with the listener was lost, or the
// job's record says lost), unknown (its record says so).
enum class FailKind { none, unknown_node, unreachable, timeout, refused, lost, unknown };
const char* fail_kind_name(FailKind k);

}  // namespace jsd
