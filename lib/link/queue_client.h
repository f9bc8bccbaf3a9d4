// QueueClient_<remote>: the local end of the one-way link to a remote node.
// Started by jsd-listener with a socketpair on fd 3; events arrive there,
// wait in order while the link is down, and leave only when the remote
// queue-server has acknowledged them.
#pragma once

#include <cstdint>
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

// When an idle link whose last frame arrived at last_rx (ms, the host's
// monotonic clock) is probed: idle_heartbeat_ms later, brought forward to
// the last multiple of heartbeat_ms before that, so that the idle clients
// of a host probe at the same instants (issue 20, B13).
uint64_t idle_probe_at(uint64_t last_rx, uint64_t heartbeat_ms, uint64_t idle_heartbeat_ms);

}  // namespace jsd
