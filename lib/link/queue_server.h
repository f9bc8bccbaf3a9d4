// QueueServer_<peer>: accepts exactly one authenticated link from <peer> on
// the port that jsd-listener bound for it (fd 3), hands each event to the
// listener (fd 4) and acknowledges it only once the listener has it.
#pragma once

#include <string>

#include "config.h"

namespace jsd {

struct ServerOptions {
  Config cfg;
  std::string peer;
  int listen_fd = 3;
  int supervisor_fd = 4;
};

int run_queue_server(const ServerOptions& o);

}  // namespace jsd
