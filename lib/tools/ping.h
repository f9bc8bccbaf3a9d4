// jsd-ping: round trips to an object on a node, like ping(8).
#pragma once

#include <string>

#include "config.h"

namespace jsd {

struct PingOptions {
  Config cfg;
  std::string node;
  std::string object = "ping";
  long count = 0;           // 0: until interrupted
  double interval_s = 1.0;  // 0: the next call as soon as a reply arrives
  size_t size = 0;          // body size in bytes (0: as small as possible)
  double timeout_s = 10.0;  // -W: how long to wait for each reply
  bool json = false;
  bool quiet = false;
};

// Exit codes: 0 some reply came back, 1 none did, 255 jsd failed.
int run_ping(const PingOptions& o);

}  // namespace jsd
