// Target sets: wherever a NODE goes, jsd-submit and jsd-ping take
// NODE[,NODE...], @GROUP (the config's groups and, with certificates, the
// groups the peers' certificates gave them), @all (every peer in peers),
// mixed. Reading a set is separate from running anything on it, so the
// rules (duplicates once, an unknown name an error for that target only,
// a bound on the size) are tested on their own (tests/unit/targets_test.cpp).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "config.h"

namespace jsd {

// At most this many distinct targets in one command: each holds a call in
// the listener while it runs, and a set this large is more likely a
// mistake (a file pasted whole) than a cluster.
constexpr size_t kMaxTargets = 4096;

// What names and groups mean on this node: its config, and what its
// listener learnt from certificates (add_listener_peers).
struct TargetDirectory {
  const Config* cfg = nullptr;
  std::set<std::string> certified;                           // peers known by certificate only
  std::map<std::string, std::set<std::string>> cert_groups;  // group -> certified members
};

// One target of a set: a node to run on (key: a peer name, this node's
// name or host:port), or a mistake (error, with the text the user typed in
// key) that is reported for that target alone.
struct TargetEntry {
  std::string key;
  std::string error;  // "" for a node to run on
};

// Is arg a set (a list or a group) rather than one NODE? A set's output is
// always per node (prefixed), whatever it expands to.
bool is_target_set(const std::string& arg);

// Splits a set at commas; false with one line in err for an empty element
// ("a,,b", a trailing comma) or more than kMaxTargets * 4 elements.
bool split_target_set(const std::string& arg, std::vector<std::string>& items, std::string& err);

// Does reading items need what only the listener knows (a group not in the
// config, a name that is neither a configured peer nor an address)?
bool needs_listener(const std::vector<std::string>& items, const Config& cfg);

// The certified peers and their certificates' groups from the listener's
// status object ("peers": [{"peer", "groups", "by": "certificate"}...]).
void add_listener_peers(TargetDirectory& d, const nlohmann::json& status);

// The targets of items, in the order first named, each once. false with one
// line in err when the set names more than kMaxTargets distinct targets or
// no node at all (an empty group alone).
bool expand_targets(const std::vector<std::string>& items, const TargetDirectory& d, std::vector<TargetEntry>& out,
                    std::string& err);

// The whole reading for a tool: split, ask the listener if needed (err of
// that is not fatal: its groups are then unknown), expand.
bool read_target_set(const std::string& arg, const Config& cfg, std::vector<TargetEntry>& out, std::string& err);

}  // namespace jsd
