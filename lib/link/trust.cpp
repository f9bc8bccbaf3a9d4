#include "trust.h"

#include <sodium.h>

#include <algorithm>

#include "crypto.h"
#include "names.h"
#include "node_name.h"
#include "uvx.h"

namespace jsd {

Trust::~Trust() {
  self_.wipe();
  sodium_memzero(psk_.data(), psk_.size());
}

bool Trust::load(const Config& c, std::vector<std::string>& errors, int64_t now) {
  size_t before = errors.size();
  node_ = c.node;
  std::string err;
  Key32 priv{}, pub{};
  if (!load_node_key(c.key_file, priv, pub, err))
    errors.push_back(err);
  else
    self_ = noise::KeyPair::from_private(priv);
  sodium_memzero(priv.data(), priv.size());
  if (!c.psk_file.empty()) {
    if (!load_psk_file(c.psk_file, psk_, err))
      errors.push_back(err);
    else
      has_psk_ = true;
  }
  auto decode = [&](const std::string& where, const std::string& text, std::vector<Key32>& into) {
    Key32 k{};
    if (!key_from_text(text, k))
      errors.push_back(where + ": '" + text + "' is not a valid public key");
    else
      into.push_back(k);
  };
  for (auto& [name, keys] : c.peer_keys)
    for (auto& t : keys) decode("peers." + name + ".public_key", t, pinned_[name]);
  for (auto& t : c.trusted_cas) decode("trusted_cas", t, cas_);
  for (auto& t : c.revoked) decode("revoked", t, revoked_);
  // A revoked key is not pinned any more, in either direction: our clients
  // then check whoever answers (XX) and refuse it.
  for (auto& [name, keys] : pinned_)
    keys.erase(std::remove_if(
                   keys.begin(), keys.end(),
                   [&](const Key32& k) { return std::find(revoked_.begin(), revoked_.end(), k) != revoked_.end(); }),
               keys.end());
  // A peer listed by address only must be vouched for by a certificate.
  for (auto& [name, ep] : c.peers)
    if (!c.peer_keys.count(name) && c.trusted_cas.empty())
      errors.push_back("peers." + name + ": no public_key, and no trusted_cas to check its certificate");
  for (auto& [name, gw] : c.via) {
    via_.insert(name);
    if (!c.peer_keys.count(name) && c.trusted_cas.empty())
      errors.push_back("peers." + name + ": no public_key, and no trusted_cas to check its certificate");
  }
  if (!c.cert_file.empty()) {
    Cert cert;
    if (!load_cert_file(c.cert_file, cert, cert_text_, err)) {
      errors.push_back(err);
    } else {
      if (cert.name != c.node)
        errors.push_back("cert_file " + c.cert_file + ": the certificate is for '" + cert.name + "', not this node ('" +
                         c.node + "')");
      if (errors.size() == before && cert.key != self_.pub)
        errors.push_back("cert_file " + c.cert_file + ": the certificate is for another key than key_file's");
      // Our own certificate is checked like a peer's would be, so a node
      // learns at -t, not at its first refused link, that it has expired.
      std::string why;
      if (!cas_.empty() && !check_cert(cert, cas_, revoked_, now, why))
        errors.push_back("cert_file " + c.cert_file + ": " + why);
      else if (now > cert.not_after)
        errors.push_back("cert_file " + c.cert_file + ": the certificate has expired");
    }
  }
  return errors.size() == before;
}

const std::vector<Key32>* Trust::pinned(const std::string& name) const {
  auto it = pinned_.find(name);
  return it == pinned_.end() ? nullptr : &it->second;
}

PeerVerdict Trust::check_peer(const std::string& claimed, const Key32& key, const std::string& cert_text,
                              int64_t now) const {
  PeerVerdict v;
  v.name = claimed;
  auto refuse = [&](std::string why) {
    v.ok = false;
    v.reason = std::move(why);
    return v;
  };
  // Not an address either: a peer named "host:port" would take the calls
  // made to that address.
  if (!valid_node_name(claimed)) return refuse("invalid node name");
  if (claimed == node_) return refuse("it claims this node's own name");
  if (std::find(revoked_.begin(), revoked_.end(), key) != revoked_.end())
    return refuse("key of " + claimed + " is revoked");
  // A via peer's requests come through its gateway, sealed: its key is
  // pinned for that, not for a link of its own.
  if (via_.count(claimed)) return refuse(claimed + " is reached through a gateway (via), not by a link of its own");
  if (const auto* keys = pinned(claimed)) {
    if (std::find(keys->begin(), keys->end(), key) == keys->end()) return refuse("key not known for " + claimed);
    v.ok = true;
    return v;
  }
  // A key pinned under another name is that node: it may not claim this one.
  for (auto& [name, keys] : pinned_)
    if (std::find(keys.begin(), keys.end(), key) != keys.end())
      return refuse("key belongs to " + name + ", not " + claimed);
  if (cas_.empty()) return refuse("key not known for " + claimed + " (not in peers)");
  if (cert_text.empty()) return refuse("key not known for " + claimed + " and no certificate presented");
  Cert cert;
  std::string err;
  if (!parse_cert(cert_text, cert, err)) return refuse("bad certificate: " + err);
  if (cert.key != key) return refuse("the certificate is for another key");
  if (cert.name != claimed) return refuse("the certificate is for " + cert.name + ", not " + claimed);
  if (!check_cert(cert, cas_, revoked_, now, err)) return refuse(err);
  v.ok = true;
  v.by_cert = true;
  v.groups = cert.groups;
  return v;
}

PeerVerdict Trust::check_cert_for(const std::string& name, const std::string& cert_text, int64_t now,
                                  Key32& key) const {
  PeerVerdict v;
  v.name = name;
  auto refuse = [&](std::string why) {
    v.reason = std::move(why);
    return v;
  };
  if (!valid_node_name(name)) return refuse("invalid node name");
  if (name == node_) return refuse("it claims this node's own name");
  // Pinned (even with every key revoked): the pin decides, as on a link.
  if (pinned_.count(name)) return refuse(name + " has its public_key pinned here: a certificate does not count");
  if (cas_.empty()) return refuse("no trusted_cas to check a certificate of " + name + " with");
  if (cert_text.empty()) return refuse("no public_key pinned for " + name + " and no certificate presented");
  Cert cert;
  std::string err;
  if (!parse_cert(cert_text, cert, err)) return refuse("bad certificate: " + err);
  if (cert.name != name) return refuse("the certificate is for " + cert.name + ", not " + name);
  if (std::find(revoked_.begin(), revoked_.end(), cert.key) != revoked_.end())
    return refuse("key of " + name + " is revoked");
  for (auto& [other, keys] : pinned_)
    if (std::find(keys.begin(), keys.end(), cert.key) != keys.end())
      return refuse("the certificate's key belongs to " + other + ", not " + name);
  if (!check_cert(cert, cas_, revoked_, now, err)) return refuse(err);
  key = cert.key;
  v.ok = true;
  v.by_cert = true;
  v.groups = cert.groups;
  v.not_after = cert.not_after;
  v.ca = key_to_text(cert.ca);
  return v;
}

bool load_trust(const Config& c, Trust& t, std::vector<std::string>& errors) {
  std::string err;
  if (!crypto_init(err)) {
    errors.push_back(err);
    return false;
  }
  return t.load(c, errors, static_cast<int64_t>(wall_time()));
}

}  // namespace jsd
