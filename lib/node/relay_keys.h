// The listener's RelayKeys (router.h): relayed requests sealed with the
// node's own key for a via peer's pinned key, opened with the originator's,
// and the ids of those opened kept until they leave the validity window,
// in memory and in STATE_DIR/relay-seen (one line per id, fsync'd before
// the request is acted on), so that a restart does not let a recorded
// request in again.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "box_keys.h"
#include "config.h"
#include "router.h"
#include "trust.h"

namespace jsd {

// The replay memory: request ids and when they were sealed.
class RelaySeen {
 public:
  explicit RelaySeen(std::string path) : path_(std::move(path)) {}
  ~RelaySeen();
  // Loads what a previous run kept (dropping ids sealed before
  // now_ms - window_ms) and opens the file for appending.
  bool open(uint64_t now_ms, uint64_t window_ms, std::string& err);
  // False with err: rid was seen, or cannot be written down.
  bool add(const std::string& rid, uint64_t sealed_ms, uint64_t now_ms, uint64_t window_ms, std::string& err);
  size_t size() const { return seen_.size(); }

 private:
  void prune(uint64_t now_ms, uint64_t window_ms);
  bool rewrite(std::string& err);
  std::string path_;
  int fd_ = -1;
  size_t lines_ = 0;                      // in the file
  std::map<std::string, uint64_t> seen_;  // rid (hex) -> sealed_ms
};

class NodeRelayKeys : public RelayKeys {
 public:
  // trust: the node's current keys (they change at a reload); audit: one
  // line of the audit log.
  NodeRelayKeys(const Config& cfg, std::function<const Trust&()> trust, std::function<void(nlohmann::json)> audit)
      : cfg_(cfg), trust_(std::move(trust)), audit_(std::move(audit)), seen_(cfg.state_dir + "/relay-seen") {}
  bool open(std::string& err);
  // At a reload: the shared keys of the old configuration's keys are wiped
  // (a peer's key may have been unpinned because it leaked).
  void forget_shared_keys() { boxes_.clear(); }
  // The key an originator last opened a box with, by name ("": none).
  std::function<void(const std::string& origin, const std::string& key_fp)> on_opened;

  bool is_gateway() const override { return cfg_.gateway; }
  uint64_t window_ms() const override { return uint64_t(cfg_.relay_window_s) * 1000; }
  bool seal(const std::string& target, std::string_view plain, std::string& sealed, std::string& err) override;
  bool open(const std::string& origin, std::string_view sealed, std::string& plain, std::string& key_fp,
            std::string& err) override;
  bool first_use(const std::string& rid, uint64_t sealed_ms, std::string& err) override;
  void refused(const std::string& origin, const std::vector<std::string>& via, const std::string& object,
               const std::string& why) override;

 private:
  const Config& cfg_;
  std::function<const Trust&()> trust_;
  std::function<void(nlohmann::json)> audit_;
  RelaySeen seen_;
  // Shared keys per (this node's key, a peer's pinned key): a hub relaying
  // many requests would otherwise do an X25519 multiplication for each.
  // Only pinned keys ever reach it, so a peer cannot fill it.
  BoxKeyCache boxes_;
};

}  // namespace jsd
