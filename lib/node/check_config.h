// `-t` / `--check-config` for the three daemons.
#pragma once

#include <string>

#include "config.h"

namespace jsd {

// -t / --check-config: prints the effective configuration as JSON; checks
// the key file when need_key, and that remote resolves when given. Returns
// the exit code (0, or 1 with one "prog: error: ..." line).
int check_config_and_print(const std::string& prog, const Config& cfg, const std::string& remote, bool need_key);

}  // namespace jsd
