// `jsd-listener --status`: asks the running listener for its links;
// `--metrics`: for its counters and gauges (Prometheus text format).
#pragma once

#include <string>

#include "config.h"

namespace jsd {

int print_status(const Config& cfg, bool json, const std::string& prog);
int print_metrics(const Config& cfg, const std::string& prog);

}  // namespace jsd
