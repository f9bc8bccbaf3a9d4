#include "job_policy.h"

namespace jsd {

// For a configured job the node's own tools (its own user, through the 0600
// control socket) are not a peer; an ad-hoc command needs the node itself in
// allow_adhoc.
bool JobPolicy::allowed(const std::string& from, const std::vector<std::string>& allow, bool own_node_ok) const {
  if (own_node_ok && from == cfg_.node) return true;
  for (auto& a : allow) {
    if (a == from || a == "*" || a == "@all") return true;
    if (a.size() > 1 && a[0] == '@' && in_group_ && in_group_(from, a.substr(1))) return true;
  }
  return false;
}

bool JobPolicy::resolve(const JobRecord& r, JobDef& def, std::string& err, bool check_allow) const {
  if (r.job == kAdhoc) {
    std::vector<std::string> allow;
    for (auto& [n, on] : cfg_.allow_adhoc) allow.push_back(n);
    if (check_allow && !allowed(r.from, allow, false)) {
      err = "ad-hoc commands from " + r.from + " are not allowed on " + cfg_.node + " (see allow_adhoc in jsd.conf(5))";
      return false;
    }
    if (r.argv.empty() || r.argv[0].empty()) {
      err = "empty ad-hoc command";
      return false;
    }
    def = JobDef{};
    def.command = r.argv;
    return true;
  }
  auto it = cfg_.jobs.find(r.job);
  if (it == cfg_.jobs.end()) {
    err = "no job '" + r.job + "' on " + cfg_.node;
    return false;
  }
  def = it->second;
  if (check_allow && def.has_allow && !allowed(r.from, def.allow, true)) {
    err = cfg_.node + " refused job " + r.job + ": " + r.from + " is not allowed to run it";
    return false;
  }
  return true;
}

}  // namespace jsd
