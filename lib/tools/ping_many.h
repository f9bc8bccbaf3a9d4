// jsd-ping on a target set (NODE,NODE..., @GROUP, @all; targets.h): the
// same calls to every node at once over one control connection, a line per
// reply and a summary per node. jsd-ping -c 1 @all: which nodes are up.
#pragma once

#include "ping.h"

namespace jsd {

// Exit codes: 0 every node answered, 1 some node did not, 255 jsd failed
// for a target (unknown, refused, an error answer) or no listener.
int run_ping_many(const PingOptions& o);

}  // namespace jsd
