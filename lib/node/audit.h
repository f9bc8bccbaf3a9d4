// STATE_DIR/audit.log: one JSON line per authorization decision (a link, a
// job, an ad-hoc command), appended and fsync'd before what it allows
// happens. Rotated by size: audit.log -> audit.log.1 (one old file kept).
// Links refused at the handshake (anyone can make a key and knock) go to
// STATE_DIR/audit-refused.log instead, aggregated (AuditRefusals): a flood
// of them never rotates a decision about a peer out of audit.log.
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
  // A string member (or a string in an array member, argv) longer than
  // kMaxField is cut, with its length: "xxx... (921600 bytes)".
  bool record(nlohmann::json entry, bool sync = true);
  static constexpr size_t kMaxField = 256;
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

// Refusals, one line per source and reason per interval: the first is
// written at once; the others of the interval are counted, and written as
// one line with "repeated": N (and "since": the first one's time) when the
// interval has passed (flush(), or the next refusal of the same kind).
class AuditRefusals {
 public:
  AuditRefusals(Audit& file, uint64_t interval_ms) : file_(file), interval_ms_(interval_ms) {}
  ~AuditRefusals() { flush(UINT64_MAX); }
  void add(nlohmann::json entry, const std::string& source, const std::string& reason, uint64_t now_ms);
  // Writes the counts of the intervals that ended by now_ms.
  void flush(uint64_t now_ms);
  bool pending() const { return !open_.empty(); }
  // Every refusal added, by (what, verdict), each one counted (the file
  // aggregates them): the node's metrics.
  const std::map<std::pair<std::string, std::string>, uint64_t>& decisions() const { return decisions_; }
  static constexpr size_t kMaxSources = 4096;  // beyond: every count is written, and they start again

 private:
  struct Open {
    uint64_t since_ms = 0;
    std::string since;  // the first one's time, as written
    uint64_t repeated = 0;
    nlohmann::json first;
  };
  void write_count(Open& o);
  Audit& file_;
  uint64_t interval_ms_;
  std::map<std::pair<std::string, std::string>, Open> open_;
  std::map<std::pair<std::string, std::string>, uint64_t> decisions_;
};

}  // namespace jsd
