// The durable outbox: events a tool asked to be delivered even if this
// node restarts before the link is up (jsd-submit --no-wait). Each entry is
// a file in STATE_DIR/outbox/, written and fsync'd before the tool is told
// "queued"; it is removed when the remote node has answered.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace jsd {

struct OutboxEntry {
  std::string id;  // the submission id (file name)
  std::string to;  // target key: peer name or host:port
  std::string object;
  std::string body;
};

class Outbox {
 public:
  explicit Outbox(std::string dir) : dir_(std::move(dir)) {}
  bool open(std::string& err);
  bool put(const OutboxEntry& e, std::string& err);
  void remove(const std::string& id);
  // Every entry, oldest first.
  std::vector<OutboxEntry> load();

 private:
  std::string dir_;
};

}  // namespace jsd
