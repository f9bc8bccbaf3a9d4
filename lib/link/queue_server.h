// QueueServer_<peer>: accepts exactly one authenticated link from <peer> on
// the port that jsd-listener bound for it (fd 3), hands each event to the
// listener (fd 4) and acknowledges it only once the listener has it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "config.h"
#include "event.h"

namespace jsd {

// Every bound a queue-server puts on the connections to its port before
// its peer's ticket arrives (anyone can connect there): a flood on the port
// costs a bounded number of descriptors and bytes, and cannot keep the
// peer out. The defaults are jsd's; tests drive each one to its edge.
struct QueueServerLimits {
  // Connections trying at once; a new one beyond makes the oldest go.
  size_t max_candidates = 32;
  // How long one may take to send the ticket (or handshake_timeout_ms if
  // that is shorter): the peer connects and sends it at once.
  uint64_t first_frame_ms = 1000;
  // The largest frame read before the ticket.
  size_t ticket_frame = kTicketFrame;
};

struct ServerOptions {
  Config cfg;
  std::string peer;
  int listen_fd = 3;
  int supervisor_fd = 4;
  QueueServerLimits limits;
};

int run_queue_server(const ServerOptions& o);

}  // namespace jsd
