// jsd-listener: the node's supervisor (the seed's QueueListener / SuperProc).
#pragma once

#include <string>

#include "config.h"

namespace jsd {

struct ListenerOptions {
  Config cfg;
  int ready_fd = -1;  // written "ready\n" and closed once the node answers
};

// Runs the node until SIGTERM/SIGINT. Returns the process exit code.
int run_listener(const ListenerOptions& o);

}  // namespace jsd
