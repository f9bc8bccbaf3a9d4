// `jsd-listener --status`: asks the running listener for its links.
#pragma once

#include <string>

#include "config.h"

namespace jsd {

int print_status(const Config& cfg, bool json, const std::string& prog);

}  // namespace jsd
