#include "relay_keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "files.h"
#include "identity.h"
#include "log.h"
#include "uvx.h"

namespace jsd {

namespace {

std::string hex(const std::string& bin) {
  std::string out(bin.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bin.data()), bin.size());
  out.pop_back();
  return out;
}

}  // namespace

RelaySeen::~RelaySeen() {
  if (fd_ >= 0) ::close(fd_);
}

bool RelaySeen::open(uint64_t now_ms, uint64_t window_ms, std::string& err) {
  std::ifstream f(path_);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    uint64_t ms = 0;
    std::string rid;
    if (ls >> ms >> rid && rid.size() == 32) seen_[rid] = ms;
  }
  prune(now_ms, window_ms);
  return rewrite(err);
}

// The file again with only what is kept (atomically), then opened for
// appending.
bool RelaySeen::rewrite(std::string& err) {
  std::string text;
  for (auto& [rid, ms] : seen_) text += std::to_string(ms) + " " + rid + "\n";
  if (!write_file_atomic(path_, text, true, err)) return false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) {
    err = "cannot open " + path_ + ": " + strerror(errno);
    return false;
  }
  lines_ = seen_.size();
  return true;
}

void RelaySeen::prune(uint64_t now_ms, uint64_t window_ms) {
  // Sealed before now - window: refused by the window whatever this says.
  for (auto it = seen_.begin(); it != seen_.end();)
    it = it->second + window_ms < now_ms ? seen_.erase(it) : std::next(it);
}

bool RelaySeen::add(const std::string& rid_bin, uint64_t sealed_ms, uint64_t now_ms, uint64_t window_ms,
                    std::string& err) {
  std::string rid = hex(rid_bin);
  if (seen_.count(rid)) {
    err = "request " + rid + " was relayed here before (a replay)";
    return false;
  }
  std::string line = std::to_string(sealed_ms) + " " + rid + "\n";
  if (fd_ < 0 || ::write(fd_, line.data(), line.size()) != ssize_t(line.size()) || fdatasync(fd_) != 0) {
    err = "cannot remember request " + rid + " in " + path_ + ": " + strerror(errno);
    return false;
  }
  seen_[rid] = sealed_ms;
  ++lines_;
  if (lines_ > 2 * seen_.size() + 1024) {
    prune(now_ms, window_ms);
    std::string werr;
    if (!rewrite(werr)) log_warn(werr);
  }
  return true;
}

bool NodeRelayKeys::open(std::string& err) { return seen_.open(uint64_t(wall_time() * 1000), window_ms(), err); }

const NodeRelayKeys::Certified* NodeRelayKeys::learnt(const std::string& target) const {
  auto l = learnt_.find(target);
  return l == learnt_.end() || int64_t(wall_time()) > l->second.until ? nullptr : &l->second;
}

// A pinned name (even one whose keys are all revoked) is never looked up:
// the pin decides, as on a link.
bool NodeRelayKeys::needs_cert(const std::string& target) {
  const Trust& t = trust_();
  return !t.pinned(target) && t.trusts_cas() && !learnt(target);
}

bool NodeRelayKeys::cert_stale(const std::string& target) {
  const Certified* c = learnt(target);
  return c && int64_t(wall_time()) > c->refresh;
}

bool NodeRelayKeys::learn_cert(const std::string& target, const std::string& cert, std::string& err) {
  Key32 key{};
  std::vector<std::string> groups;
  if (!certified(target, cert, key, groups, err)) return false;
  Certified& c = learnt_[target];
  c = checked_[cert];
  c.refresh = int64_t(wall_time()) + kLearntKeyS;
  return true;
}

bool NodeRelayKeys::certified(const std::string& name, const std::string& cert, Key32& key,
                              std::vector<std::string>& groups, std::string& err) {
  int64_t now = int64_t(wall_time());
  auto c = checked_.find(cert);
  if (c == checked_.end() || now > c->second.until) {
    PeerVerdict v = trust_().check_cert_for(name, cert, now, key);
    if (!v.ok) {
      err = "the certificate of " + name + " is not accepted: " + v.reason;
      return false;
    }
    if (checked_.size() >= 4096) checked_.clear();  // bounded: a fleet's worth
    c = checked_.insert_or_assign(cert, Certified{name, key, v.groups, v.ca, v.not_after, 0}).first;
  }
  if (c->second.name != name) {
    err = "the certificate is for " + c->second.name + ", not " + name;
    return false;
  }
  key = c->second.key;
  groups = c->second.groups;
  return true;
}

bool NodeRelayKeys::seal(const std::string& target, std::string_view plain, std::string& sealed, std::string& err) {
  const Trust& t = trust_();
  const auto* keys = t.pinned(target);
  const Key32* key = keys && !keys->empty() ? &keys->front() : nullptr;
  if (keys && !key) {
    err = "cannot seal a request for " + target + ": every public_key pinned for it is revoked";
    return false;
  }
  if (const Certified* c = keys ? nullptr : learnt(target)) key = &c->key;
  if (!key) {
    err = "cannot seal a request for " + target +
          ": no public_key pinned for it in peers (a node reached through "
          "a gateway needs one, or trusted_cas and its certificate)";
    return false;
  }
  sealed = boxes_.seal(t.self().priv, *key, plain);
  if (sealed.empty()) {
    err = "cannot seal a request for " + target + ": its public_key is not usable";
    return false;
  }
  return true;
}

bool NodeRelayKeys::open(const std::string& origin, const std::string& cert, std::string_view sealed,
                         std::string& plain, std::string& key_fp, std::string& err) {
  const Trust& t = trust_();
  bool configured = cfg_.peers.count(origin) || cfg_.via.count(origin);
  const auto* keys = t.pinned(origin);
  if (keys) {  // a pinned key wins over a certificate, as on a link (all revoked: refused)
    if (!configured) {
      err = origin + " is not a peer of " + cfg_.node;
      return false;
    }
    if (keys->empty()) {
      err = "every public_key pinned for " + origin + " is revoked";
      return false;
    }
    for (auto& k : *keys)
      if (boxes_.open(t.self().priv, k, sealed, plain)) {
        key_fp = key_fingerprint(k);
        if (on_opened) on_opened(origin, Opened{key_fp, false, {}, "", 0});
        return true;
      }
    err = "the request was not sealed with " + origin + "'s key (altered on its way, or not from " + origin + ")";
    return false;
  }
  // Known by certificate only: as a certified node may link without being
  // in peers, its relayed requests may come with its certificate.
  if (!t.trusts_cas()) {
    err = configured ? "no public_key pinned for " + origin + " (relayed requests need one, or trusted_cas)"
                     : origin + " is not a peer of " + cfg_.node;
    return false;
  }
  if (cert.empty()) {
    err = "no public_key pinned for " + origin + " and the request carries no certificate";
    return false;
  }
  Key32 key{};
  std::vector<std::string> groups;
  if (!certified(origin, cert, key, groups, err)) return false;
  const Certified& c = checked_[cert];
  if (!boxes_.open(t.self().priv, key, sealed, plain)) {
    err = "the request was not sealed with the key " + origin +
          "'s certificate gives (altered on its way, or not from " + origin + ")";
    return false;
  }
  key_fp = key_fingerprint(key);
  if (on_opened) on_opened(origin, Opened{key_fp, true, groups, c.ca, c.until});
  return true;
}

bool NodeRelayKeys::first_use(const std::string& rid, uint64_t sealed_ms, std::string& err) {
  return seen_.add(rid, sealed_ms, uint64_t(wall_time() * 1000), window_ms(), err);
}

void NodeRelayKeys::refused(const std::string& origin, const std::vector<std::string>& via, const std::string& object,
                            const std::string& why) {
  if (audit_)
    audit_({{"what", "relay"},
            {"peer", origin},
            {"via", via},
            {"object", object},
            {"verdict", "refused"},
            {"reason", why}});
}

}  // namespace jsd
