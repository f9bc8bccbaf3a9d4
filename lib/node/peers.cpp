#include "peers.h"

#include <algorithm>

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

}  // namespace jsd
