// The listener's RelayKeys (router.h): relayed requests sealed with the
// node's own key for a via peer's pinned key (or the key its certificate
// gave), opened with the originator's (pinned, or from its certificate),
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
  // (a peer's key may have been unpinned because it leaked), and so are the
  // keys learnt from certificates (the CAs or revocations may have changed).
  void forget_shared_keys() {
    boxes_.clear();
    learnt_.clear();
    checked_.clear();
  }
  // The key an originator last opened a box with, by name, and whether a
  // certificate vouched for it (its groups, CA and end) rather than a pin.
  struct Opened {
    std::string key_fp;
    bool by_cert = false;
    std::vector<std::string> groups;
    std::string ca;  // key text
    int64_t not_after = 0;
  };
  std::function<void(const std::string& origin, const Opened&)> on_opened;
  // A target's key learnt from its certificate is asked for again after
  // this long (used meanwhile, until its certificate ends): a node that
  // changed its key is found again.
  static constexpr int64_t kLearntKeyS = 600;

  bool is_gateway() const override { return cfg_.gateway; }
  uint64_t window_ms() const override { return uint64_t(cfg_.relay_window_s) * 1000; }
  bool seal(const std::string& target, std::string_view plain, std::string& sealed, std::string& err) override;
  bool open(const std::string& origin, const std::string& cert, std::string_view sealed, std::string& plain,
            std::string& key_fp, std::string& err) override;
  bool needs_cert(const std::string& target) override;
  bool cert_stale(const std::string& target) override;
  bool learn_cert(const std::string& target, const std::string& cert, std::string& err) override;
  std::string own_cert() const override { return trust_().cert_text(); }
  bool first_use(const std::string& rid, uint64_t sealed_ms, std::string& err) override;
  void refused(const std::string& origin, const std::vector<std::string>& via, const std::string& object,
               const std::string& why) override;

 private:
  const Config& cfg_;
  std::function<const Trust&()> trust_;
  std::function<void(nlohmann::json)> audit_;
  RelaySeen seen_;
  // The key a certificate vouches for name, checked once per certificate
  // text (an Ed25519 verification per request would cost more than the
  // box): false with err.
  bool certified(const std::string& name, const std::string& cert, Key32& key, std::vector<std::string>& groups,
                 std::string& err);
  // Shared keys per (this node's key, a peer's pinned or certified key): a
  // hub relaying many requests would otherwise do an X25519 multiplication
  // for each. Only keys pinned or signed by a trusted CA ever reach it, so
  // an outsider cannot fill it.
  BoxKeyCache boxes_;
  struct Certified {
    std::string name;
    Key32 key{};
    std::vector<std::string> groups;
    std::string ca;
    int64_t until = 0;    // unix seconds: the certificate's end
    int64_t refresh = 0;  // learnt_: asked for again after this (kLearntKeyS after learning)
  };
  // The learnt key of target while its certificate lasts, or null.
  const Certified* learnt(const std::string& target) const;
  std::map<std::string, Certified> learnt_;   // targets' keys from their answers to lookups, by name
  std::map<std::string, Certified> checked_;  // originators' certificates checked, by text (bounded)
};

}  // namespace jsd
