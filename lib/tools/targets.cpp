#include "targets.h"

#include <unordered_set>

#include "control.h"
#include "json_read.h"
#include "names.h"

namespace jsd {

bool is_target_set(const std::string& arg) {
  return arg.find(',') != std::string::npos || (!arg.empty() && arg[0] == '@');
}

bool split_target_set(const std::string& arg, std::vector<std::string>& items, std::string& err) {
  items.clear();
  size_t start = 0;
  for (;;) {
    size_t comma = arg.find(',', start);
    std::string item = arg.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) {
      err = "empty name in target set '" + (arg.size() > 80 ? arg.substr(0, 80) + "..." : arg) + "'";
      return false;
    }
    items.push_back(std::move(item));
    // Bounded before anything is resolved: a pasted file is one line, not
    // minutes of lookups (duplicates count here; they are cheap).
    if (items.size() > kMaxTargets * 4) {
      err = "target set has more than " + std::to_string(kMaxTargets * 4) + " names";
      return false;
    }
    if (comma == std::string::npos) return true;
    start = comma + 1;
  }
}

namespace {

bool config_knows(const Config& cfg, const std::string& name) {
  Target t;
  std::string err;
  return resolve_target(cfg, name, t, err);
}

}  // namespace

bool needs_listener(const std::vector<std::string>& items, const Config& cfg) {
  for (auto& i : items) {
    if (i == "@all") continue;
    if (i[0] == '@' ? !cfg.groups.count(i.substr(1)) : !config_knows(cfg, i)) return true;
  }
  return false;
}

void add_listener_peers(TargetDirectory& d, const nlohmann::json& status) {
  auto peers = status.find("peers");
  if (peers == status.end() || !peers->is_array()) return;
  for (auto& p : *peers) {
    if (!p.is_object() || !p.contains("peer") || !p["peer"].is_string()) continue;
    std::string name = p["peer"].get<std::string>();
    if (!valid_name(name)) continue;
    if (!d.cfg || !d.cfg->peers.count(name)) d.certified.insert(name);
    auto g = p.find("cert_groups");
    if (g == p.end() || !g->is_array()) continue;
    for (auto& x : *g)
      if (x.is_string() && valid_name(x.get<std::string>())) d.cert_groups[x.get<std::string>()].insert(name);
  }
}

bool expand_targets(const std::vector<std::string>& items, const TargetDirectory& d, std::vector<TargetEntry>& out,
                    std::string& err) {
  out.clear();
  std::unordered_set<std::string> seen;
  size_t nodes = 0;
  auto add = [&](const std::string& key, const std::string& error) {
    if (!seen.insert(error.empty() ? key : "\n" + key).second) return true;  // named before: once
    if (error.empty()) ++nodes;
    out.push_back({key, error});
    if (out.size() > kMaxTargets) {
      err = "target set names more than " + std::to_string(kMaxTargets) + " nodes; at most " +
            std::to_string(kMaxTargets) + " in one command";
      return false;
    }
    return true;
  };
  // A name: what resolve_target makes of it (so beta and beta's host:port
  // are one target), or a peer known only by its certificate.
  auto add_name = [&](const std::string& name) {
    Target t;
    std::string why;
    if (d.cfg && resolve_target(*d.cfg, name, t, why)) return add(t.key(), "");
    if (d.certified.count(name)) return add(name, "");
    return add(name, why.empty() ? "unknown node '" + name + "'" : why);
  };
  for (auto& item : items) {
    if (item[0] != '@') {
      if (!add_name(item)) return false;
      continue;
    }
    std::string g = item.substr(1);
    bool ok = true;
    if (g == "all") {
      if (d.cfg)
        for (auto& [name, addr] : d.cfg->peers) ok = ok && add(name, "");
      if (d.cfg)
        for (auto& [name, gw] : d.cfg->via) ok = ok && add(name, "");
      if (!ok) return false;
      continue;
    }
    bool known = false;
    if (d.cfg)
      if (auto it = d.cfg->groups.find(g); it != d.cfg->groups.end()) {
        known = true;
        // A member that is not a peer (a group that names itself, a typo)
        // is an unknown node, reported as such; the others run.
        for (auto& m : it->second) ok = ok && add_name(m);
      }
    if (auto it = d.cert_groups.find(g); it != d.cert_groups.end()) {
      known = true;
      for (auto& m : it->second) ok = ok && add(m, "");
    }
    if (!ok) return false;
    if (!known && !add(item, "unknown group '" + g + "': not in groups of " +
                                 (d.cfg && !d.cfg->path.empty() ? d.cfg->path : "the configuration") +
                                 " nor given by a linked peer's certificate"))
      return false;
  }
  if (nodes == 0 && out.empty()) {
    err = "target set names no node (an empty group?)";
    return false;
  }
  return true;
}

bool read_target_set(const std::string& arg, const Config& cfg, std::vector<TargetEntry>& out, std::string& err) {
  std::vector<std::string> items;
  if (!split_target_set(arg, items, err)) return false;
  TargetDirectory d;
  d.cfg = &cfg;
  if (needs_listener(items, cfg)) {
    // Certified peers and their groups are known only to the listener, once
    // they linked. Without an answer they are unknown: the targets that
    // need them fail, the others run (and the listener's absence is
    // reported by each of them anyway).
    ControlMsg req, rep;
    req.type = ControlType::status;
    std::string why;
    if (control_request(cfg, req, rep, 5000, why) && rep.type == ControlType::status_reply) {
      nlohmann::json j;
      parse_json(rep.status, j);
      add_listener_peers(d, j);
    }
  }
  return expand_targets(items, d, out, err);
}

}  // namespace jsd
