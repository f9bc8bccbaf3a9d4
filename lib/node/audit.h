// STATE_DIR/audit.log: one JSON line per authorization decision (a link, a
// job, an ad-hoc command), appended and fsync'd before what it allows
// happens. Rotated by size: audit.log -> audit.log.1 (one old file kept).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace jsd {

class Audit {
 public:
  Audit(std::string path, size_t max_bytes) : path_(std::move(path)), max_(max_bytes) {}
  ~Audit();
  bool open(std::string& err);
  // Adds "time" and appends one line; false (and one log line) if it could
  // not be made durable: the caller then refuses what it was about to allow.
  // sync=false for a refusal: it allows nothing, so it need not be on disk
  // before the answer (and a flood of them must not stall the node).
  bool record(nlohmann::json entry, bool sync = true);
  // Decisions written, by (what, verdict): the node's metrics.
  const std::map<std::pair<std::string, std::string>, uint64_t>& decisions() const { return decisions_; }

 private:
  bool rotate();
  std::string path_;
  size_t max_;
  int fd_ = -1;
  size_t size_ = 0;
  std::map<std::pair<std::string, std::string>, uint64_t> decisions_;
};

}  // namespace jsd
