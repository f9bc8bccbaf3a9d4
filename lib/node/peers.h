// What the node knows about its peers beyond its config: the certified
// peers it learnt at their handshake (name -> address), the groups their
// certificates gave them and the key each last linked with. One place
// answers "which link does node X use" and "is X in @g", for the router,
// the supervisor and the job runner alike.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.h"

namespace jsd {

// Where a certified peer that announced `announced` (its listen address)
// and connected from `from` (host:port) is reached: its announced port at
// the host it connected from. An address names whoever answers there: a
// peer must not take the calls made to another node's address by
// announcing it. warning says so when the announced host was another one
// (not 0.0.0.0 or ::, which mean "wherever I am").
Endpoint reached_at(const Endpoint& announced, const std::string& from, std::string& warning);

// What a certificate carried by relayed requests said of their originator.
struct RelayedCert {
  std::vector<std::string> groups;
  std::string ca;  // the CA that signed it (key text, as in trusted_cas)
  int64_t not_after = 0;
};

class Peers {
 public:
  explicit Peers(const Config& cfg) : cfg_(cfg) {}

  // The key of the client that links to node: its name if it is a
  // configured or a certified peer, "" otherwise.
  std::string client_key_for(const std::string& node) const;
  // A NODE argument as resolve_target() reads it; a host:port that a
  // certified peer linked from names that peer (one link per peer,
  // however the tools name it).
  bool resolve(const std::string& to, Target& t, std::string& err) const;
  // Was a call sent through client_key answered by peer? By name, or (a
  // certified peer called by host:port) at the address it is known by.
  bool answers_for(const std::string& peer, const std::string& client_key) const;
  bool in_group(const std::string& peer, const std::string& group) const;

  // Its link joined: what its handshake said counts from now on.
  void joined(const std::string& peer, const std::string& key_fp, bool by_cert, std::vector<std::string> groups);
  // A certified peer's address; true if it moved (its client must restart).
  // An address names one node: a peer learnt there before is no longer.
  bool learn_address(const std::string& peer, const Endpoint& addr);
  // The address a certified (not configured) peer is reached at, or null.
  const Endpoint* learnt_address(const std::string& peer) const;
  std::string fingerprint(const std::string& peer) const;
  // A relayed request from origin opened with the key key_fp: the key it
  // submits with, as a link's would be; cert: its certificate gave the key
  // (its groups count as a certified link's would), none: a pinned key.
  void relayed(const std::string& origin, const std::string& key_fp, std::optional<RelayedCert> cert = std::nullopt) {
    fingerprints_[origin] = key_fp;
    if (cert) {
      cert_groups_[origin] = cert->groups;
      relayed_certs_[origin] = std::move(*cert);
    } else {
      cert_groups_.erase(origin);
      relayed_certs_.erase(origin);
    }
  }
  // The certificate origin's last relayed request was opened by, or null.
  const RelayedCert* relayed_cert(const std::string& origin) const {
    auto it = relayed_certs_.find(origin);
    return it == relayed_certs_.end() ? nullptr : &it->second;
  }
  // Every configured peer and every certified one that linked, with its
  // address, groups (config, certificate) and the state of its links
  // (links_json of the listener; "idle": no link now): for --status, and
  // for the tools that read @groups a certificate gave.
  nlohmann::json directory_json(const nlohmann::json& links) const;

 private:
  const Config& cfg_;
  std::map<std::string, Endpoint> learnt_;  // certified peers, by name
  std::map<std::string, std::vector<std::string>> cert_groups_;
  std::map<std::string, std::string> fingerprints_;
  std::map<std::string, RelayedCert> relayed_certs_;
};

// At a job's start, under the configuration of that moment: may from run
// anything here (a peer still, its key -- the one it links with, else
// submitted_with, the one its job was submitted with -- neither revoked nor
// unpinned)? A certified peer not linked since the node started cannot be
// judged again: known = false, and the decision made when its job was
// accepted stands.
bool peer_may_run(const Config& cfg, const Peers& peers, const std::string& from, const std::string& submitted_with,
                  bool& known, std::string& why);

}  // namespace jsd
