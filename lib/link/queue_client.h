// QueueClient_<remote>: the local end of the one-way link to a remote node.
// Started by jsd-listener with a socketpair on fd 3; events arrive there,
// wait in order while the link is down, and leave only when the remote
// queue-server has acknowledged them.
#pragma once

#include <string>

#include "config.h"

namespace jsd {

struct ClientOptions {
  Config cfg;
  std::string remote;     // peer name or host:port
  std::string address;    // set: remote is a name known by certificate, at this address
  uint64_t instance = 0;  // the local listener's instance id
  int supervisor_fd = 3;
};

int run_queue_client(const ClientOptions& o);

}  // namespace jsd
