// Who may run what on this node: the jobs its config defines, each with its
// allow list, and ad-hoc commands for the peers in allow_adhoc.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "job_record.h"

namespace jsd {

constexpr const char* kAdhoc = "(adhoc)";  // the job name of an ad-hoc command

using InGroupFn = std::function<bool(const std::string& peer, const std::string& group)>;

class JobPolicy {
 public:
  // in_group is read at each decision (its owner may set it later).
  JobPolicy(const Config& cfg, const InGroupFn& in_group) : cfg_(cfg), in_group_(in_group) {}
  // Names and @groups; "@all" (and "*") is every authenticated peer.
  bool allowed(const std::string& from, const std::vector<std::string>& allow, bool own_node_ok) const;
  // The definition r runs with; false, with err, when there is none or
  // (check_allow) r's submitter may not run it.
  bool resolve(const JobRecord& r, JobDef& def, std::string& err, bool check_allow = true) const;

 private:
  const Config& cfg_;
  const InGroupFn& in_group_;
};

}  // namespace jsd
