#include "peers.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "identity.h"
#include "uvx.h"

namespace jsd {

std::string Peers::client_key_for(const std::string& node) const {
  return cfg_.peers.count(node) || learnt_.count(node) ? node : "";
}

bool Peers::resolve(const std::string& to, Target& t, std::string& err) const {
  if (!resolve_target(cfg_, to, t, err)) return false;
  if (t.name.empty())
    for (auto& [name, addr] : learnt_)
      if (addr.host == t.addr.host && addr.port == t.addr.port) t.name = name;
  return true;
}

bool Peers::answers_for(const std::string& peer, const std::string& client_key) const {
  if (client_key_for(peer) == client_key) return true;
  auto d = learnt_.find(peer);
  return d != learnt_.end() && d->second.str() == client_key;
}

bool Peers::in_group(const std::string& peer, const std::string& group) const {
  auto g = cfg_.groups.find(group);
  if (g != cfg_.groups.end() && std::find(g->second.begin(), g->second.end(), peer) != g->second.end()) return true;
  auto c = cert_groups_.find(peer);
  return c != cert_groups_.end() && std::find(c->second.begin(), c->second.end(), group) != c->second.end();
}

void Peers::joined(const std::string& peer, const std::string& key_fp, bool by_cert, std::vector<std::string> groups) {
  if (by_cert)
    cert_groups_[peer] = std::move(groups);
  else
    cert_groups_.erase(peer);
  fingerprints_[peer] = key_fp;
}

Endpoint reached_at(const Endpoint& announced, const std::string& from, std::string& warning) {
  Endpoint src, at = announced;
  std::string err;
  if (!parse_endpoint(from, src, err) || src.host == announced.host) return at;
  at.host = src.host;
  if (announced.host != "0.0.0.0" && announced.host != "::")
    warning = "announced the address " + announced.str() + " but connects from " + src.host + ": it is reached at " +
              at.str() + "; calls to " + announced.str() + " do not go to it";
  return at;
}

bool Peers::learn_address(const std::string& peer, const Endpoint& addr) {
  for (auto it = learnt_.begin(); it != learnt_.end();)
    it = it->first != peer && it->second.str() == addr.str() ? learnt_.erase(it) : std::next(it);
  auto d = learnt_.find(peer);
  bool moved = d != learnt_.end() && d->second.str() != addr.str();
  learnt_[peer] = addr;
  return moved;
}

const Endpoint* Peers::learnt_address(const std::string& peer) const {
  if (cfg_.peers.count(peer)) return nullptr;
  auto d = learnt_.find(peer);
  return d == learnt_.end() ? nullptr : &d->second;
}

nlohmann::json Peers::directory_json(const nlohmann::json& links) const {
  // Its outgoing link says most (the one its calls go over); an incoming
  // one alone still shows that the peer is there.
  std::map<std::string, std::string> out_state, in_state;
  for (auto& l : links) {
    if (!l.is_object() || !l.contains("peer") || !l["peer"].is_string() || !l.contains("state") ||
        !l["state"].is_string())
      continue;
    bool out = l.value("direction", "") == "out";
    (out ? out_state : in_state)[l["peer"].get<std::string>()] = l["state"].get<std::string>();
  }
  auto entry = [&](const std::string& name, const Endpoint& addr, bool by_cert) {
    nlohmann::json groups = nlohmann::json::array(), cert = nlohmann::json::array();
    for (auto& [g, members] : cfg_.groups)
      if (std::find(members.begin(), members.end(), name) != members.end()) groups.push_back(g);
    if (auto c = cert_groups_.find(name); c != cert_groups_.end())
      for (auto& g : c->second) cert.push_back(g);
    std::string state = out_state.count(name) ? out_state[name] : in_state.count(name) ? in_state[name] : "idle";
    return nlohmann::json{{"peer", name},   {"address", addr.str()}, {"by", by_cert ? "certificate" : "config"},
                          {"state", state}, {"groups", groups},      {"cert_groups", cert}};
  };
  nlohmann::json out = nlohmann::json::array();
  for (auto& [name, addr] : cfg_.peers) out.push_back(entry(name, addr, false));
  for (auto& [name, addr] : learnt_)
    if (!cfg_.peers.count(name)) out.push_back(entry(name, addr, true));
  return out;
}

std::string Peers::fingerprint(const std::string& peer) const {
  auto k = fingerprints_.find(peer);
  return k == fingerprints_.end() ? "" : k->second;
}

// At a job's start (JobRunner::peer_ok), under the configuration of that
// moment: a peer no longer in peers, whose key is revoked, or whose key is
// no longer pinned for it, may not run anything. A certified peer that has
// not linked since this node started cannot be judged again (its
// certificate is not known until it links): the decision made when its
// job was accepted stands, allow list included (known = false).
bool peer_may_run(const Config& cfg, const Peers& peers, const std::string& from, const std::string& submitted_with,
                  bool& known, std::string& why) {
  // The key it links with now, else the one it submitted with (a restart
  // forgets who linked with what until the peer links again).
  std::string fp = peers.fingerprint(from);
  if (fp.empty()) fp = submitted_with;
  // Remembered: every job's start judges the same few configured keys
  // again (decoding and hashing them was ~4 % of the listener's work per
  // submission). Per thread; bounded, as configurations change at SIGHUP.
  auto fp_of = [](const std::string& text) {
    thread_local std::unordered_map<std::string, std::string> seen;
    if (auto it = seen.find(text); it != seen.end()) return it->second;
    if (seen.size() >= 4096) seen.clear();
    Key32 k;
    return seen[text] = key_from_text(text, k) ? key_fingerprint(k) : std::string();
  };
  std::set<std::string> revoked;
  for (auto& r : cfg.revoked) revoked.insert(fp_of(r));
  for (auto& k : {fp, submitted_with})
    if (!k.empty() && revoked.count(k)) {
      why = "the key of " + from + " (" + k + ") is revoked";
      return false;
    }
  if (cfg.peers.count(from) || cfg.via.count(from)) {
    auto pk = cfg.peer_keys.find(from);
    if (pk == cfg.peer_keys.end() || pk->second.empty()) return true;  // certified, at a configured address
    std::set<std::string> pinned;
    for (auto& k : pk->second)
      if (!revoked.count(fp_of(k))) pinned.insert(fp_of(k));
    if (pinned.empty()) {
      why = "every key pinned for " + from + " is revoked";
      return false;
    }
    if (!fp.empty() && !pinned.count(fp)) {
      why = "the key " + from + " linked with (" + fp + ") is no longer pinned for it";
      return false;
    }
    return true;
  }
  if (peers.learnt_address(from)) return true;  // certified, linked since this node started
  // Certified, relayed to this node since it started: while its CA is
  // trusted and its certificate lasts.
  if (const RelayedCert* c = peers.relayed_cert(from)) {
    if (std::find(cfg.trusted_cas.begin(), cfg.trusted_cas.end(), c->ca) == cfg.trusted_cas.end()) {
      why = "the CA that certified " + from + " is no longer in trusted_cas";
      return false;
    }
    if (int64_t(wall_time()) > c->not_after) {
      why = "the certificate of " + from + " has expired";
      return false;
    }
    return true;
  }
  if (!fp.empty() || cfg.trusted_cas.empty()) {
    why = from + " is no longer a peer of " + cfg.node;
    return false;
  }
  known = false;
  return true;
}

}  // namespace jsd
