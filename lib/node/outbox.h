// The durable outbox: events a tool asked to be delivered even if this
// node restarts before the link is up (jsd-submit --no-wait). Each entry is
// a file in STATE_DIR/outbox/, written and fsync'd before the tool is told
// "queued"; it is removed when the remote node has answered.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace jsd {

struct OutboxEntry {
  std::string id;  // the submission id (file name)
  std::string to;  // target key: peer name or host:port
  std::string object;
  std::string body;
  // Flushed to stable storage (fsync) before put() returns. A waiting
  // submission's entry is not: it has to outlive a killed listener (the
  // page cache does), and its submitter is waiting for every microsecond;
  // --no-wait's promise is a power cut too. Not stored in the file.
  bool sync = true;
};

// An outbox file's text; false, with err, when it is not a valid entry (a
// member missing or of the wrong type, an invalid id). Never throws.
bool parse_outbox_entry(std::string_view text, OutboxEntry& e, std::string& err) noexcept;

class Outbox {
 public:
  explicit Outbox(std::string dir) : dir_(std::move(dir)) {}
  bool open(std::string& err);
  bool put(const OutboxEntry& e, std::string& err);
  void remove(const std::string& id);
  // Every entry, oldest first.
  std::vector<OutboxEntry> load();
  // A submission its target will never accept (it answered with an error):
  // its record (JSON text) is kept as refused/ID.json, so that --status can
  // say why; at most kRefusedKeep of them, the oldest dropped first.
  void refuse(const std::string& id, const std::string& record);
  // The refusal record of id; "" when there is none.
  std::string refusal(const std::string& id);
  static constexpr size_t kRefusedKeep = 1000;

 private:
  std::string dir_;
};

}  // namespace jsd
