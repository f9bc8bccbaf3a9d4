// The fan-out's pure parts (fanout.h, fanout_node.h): the names of jsd's
// failures, a set's exit status and summary from its nodes' statuses and
// runs, and the ids of its nodes' submissions, apart from the Fanout that
// runs the nodes.
#include <sodium.h>

#include <algorithm>

#include "exit_codes.h"
#include "fanout.h"
#include "fanout_node.h"
#include "names.h"

namespace jsd {

std::string derived_id(const std::string& id, const std::string& node) {
  std::string d = id + "." + node;
  if (valid_name(d)) return d;
  unsigned char h[8];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(node.data()), node.size(), nullptr, 0);
  char hex[17];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return id + "." + hex;
}

const char* fail_kind_name(FailKind k) {
  switch (k) {
    case FailKind::none:
      return "";
    case FailKind::unknown_node:
      return "unknown_node";
    case FailKind::unreachable:
      return "unreachable";
    case FailKind::timeout:
      return "timeout";
    case FailKind::refused:
      return "refused";
    case FailKind::lost:
      return "lost";
    case FailKind::unknown:
      return "unknown";
  }
  return "";
}

bool NodeStatus::unknowable() const { return code == kExitOutcomeUnknown && from == ExitFrom::jsd; }

int fanout_exit_status(const std::vector<NodeStatus>& ended) {
  int code = kExitOk;
  for (auto& s : ended) {
    if (s.unknowable()) return kExitOutcomeUnknown;
    code = std::max(code, s.code);
  }
  return code;
}

std::string status_summary(const NodeStatus& s) {
  std::string t = "exit status " + std::to_string(s.code);
  if (s.from == ExitFrom::job && s.code >= kExitOutcomeUnknown) return t + " (the job's own)";
  if (s.from == ExitFrom::jsd && s.code == kExitJsdFailure) return t + " (jsd's: the job did not run)";
  if (s.unknowable()) return t + " (jsd's: the outcome cannot be known)";
  return t;
}

int fanout_summary(const std::vector<std::unique_ptr<NodeRun>>& runs, bool quiet, FILE* err) {
  std::vector<NodeStatus> ended;
  size_t ok = 0, failed = 0, unknown = 0, not_started = 0;
  for (auto& n : runs) {
    if (n->not_started) {
      ++not_started;
      continue;
    }
    if (n->phase != NodeRun::Phase::done) continue;
    NodeStatus s{n->code, n->from};
    (s.code == kExitOk ? ok : s.unknowable() ? unknown : failed)++;
    ended.push_back(s);
  }
  if (!quiet) {
    fprintf(err, "jsd-submit: %zu node%s: %zu ok, %zu failed", runs.size(), runs.size() == 1 ? "" : "s", ok, failed);
    if (unknown) fprintf(err, ", %zu unknown", unknown);
    if (not_started) fprintf(err, ", %zu not started", not_started);
    fprintf(err, "\n");
    for (auto& n : runs) {
      if (n->not_started)
        fprintf(err, "jsd-submit:   %s: not started (%s)\n", n->node.c_str(), n->why.c_str());
      else if (n->phase == NodeRun::Phase::done && n->code != kExitOk)
        fprintf(err, "jsd-submit:   %s: %s%s%s\n", n->node.c_str(),
                n->kind == FailKind::none ? status_summary({n->code, n->from}).c_str() : fail_kind_name(n->kind),
                n->why.empty() ? "" : ": ", n->why.c_str());
    }
  }
  return fanout_exit_status(ended);
}

}  // namespace jsd
