#include "relay_keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

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

bool NodeRelayKeys::seal(const std::string& target, std::string_view plain, std::string& sealed, std::string& err) {
  const Trust& t = trust_();
  const auto* keys = t.pinned(target);
  if (!keys || keys->empty()) {
    err = "cannot seal a request for " + target +
          ": no public_key pinned for it in peers (a node reached through "
          "a gateway needs one)";
    return false;
  }
  sealed = boxes_.seal(t.self().priv, keys->front(), plain);
  if (sealed.empty()) {
    err = "cannot seal a request for " + target + ": its public_key is not usable";
    return false;
  }
  return true;
}

bool NodeRelayKeys::open(const std::string& origin, std::string_view sealed, std::string& plain, std::string& key_fp,
                         std::string& err) {
  const Trust& t = trust_();
  if (!cfg_.peers.count(origin) && !cfg_.via.count(origin)) {
    err = origin + " is not a peer of " + cfg_.node;
    return false;
  }
  const auto* keys = t.pinned(origin);
  if (!keys || keys->empty()) {
    err = "no public_key pinned for " + origin + " (relayed requests need one)";
    return false;
  }
  for (auto& k : *keys)
    if (boxes_.open(t.self().priv, k, sealed, plain)) {
      key_fp = key_fingerprint(k);
      if (on_opened) on_opened(origin, key_fp);
      return true;
    }
  err = "the request was not sealed with " + origin + "'s key (altered on its way, or not from " + origin + ")";
  return false;
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
