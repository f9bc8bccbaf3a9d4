// What a node knows about identities, loaded once from its config: its own
// key pair (its Noise static key), the optional psk and certificate, the
// public keys pinned for its peers, the CAs it trusts and the keys it
// revokes. check_peer() is the one place that decides who a connecting key
// is: every link, in both directions, goes through it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "identity.h"
#include "noise.h"

namespace jsd {

struct PeerVerdict {
  bool ok = false;
  std::string name;                 // the name the key is accepted under
  std::vector<std::string> groups;  // the certificate's groups (config groups are added by the node)
  bool by_cert = false;             // accepted by certificate, not by a pinned key
  int64_t not_after = 0;            // by_cert: the certificate's end (unix seconds)
  std::string ca;                   // by_cert (check_cert_for): the CA that signed it (key text)
  std::string reason;               // why not (for the log and for the peer)
};

class Trust {
 public:
  Trust() = default;
  ~Trust();
  Trust(const Trust&) = delete;
  Trust& operator=(const Trust&) = delete;

  // Reads key_file, psk_file and cert_file, decodes the keys in peers,
  // trusted_cas and revoked. One error line per mistake.
  bool load(const Config& c, std::vector<std::string>& errors, int64_t now);

  const noise::KeyPair& self() const { return self_; }
  bool has_psk() const { return has_psk_; }
  const Key32& psk() const { return psk_; }
  const std::string& cert_text() const { return cert_text_; }
  bool trusts_cas() const { return !cas_.empty(); }
  // The pinned keys of a peer, or none.
  const std::vector<Key32>* pinned(const std::string& name) const;

  // The verdict on a peer that proved (in the handshake) that it holds key,
  // claiming name, maybe presenting a certificate. A pinned key always wins
  // over a certificate; a revoked key is refused whatever vouches for it.
  PeerVerdict check_peer(const std::string& claimed, const Key32& key, const std::string& cert, int64_t now) const;
  // The verdict on a certificate alone, for a node known only through a
  // gateway (its relayed requests carry it; its answer to a lookup is it):
  // as check_peer judges a certified peer, key is the one it vouches for.
  // The caller checks that the node holds it (a box opens, or it seals).
  PeerVerdict check_cert_for(const std::string& name, const std::string& cert, int64_t now, Key32& key) const;

 private:
  std::string node_;
  noise::KeyPair self_;
  bool has_psk_ = false;
  Key32 psk_{};
  std::string cert_text_;
  std::map<std::string, std::vector<Key32>> pinned_;
  std::vector<Key32> cas_, revoked_;
  std::set<std::string> via_;  // peers reached through a gateway
};

// crypto_init and Trust::load: what every process that makes or accepts a
// link does first.
bool load_trust(const Config& c, Trust& t, std::vector<std::string>& errors);

}  // namespace jsd
