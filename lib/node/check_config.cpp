#include "check_config.h"

#include <cstdio>
#include <iostream>

#include "crypto.h"
#include "exit_codes.h"
#include "trust.h"
#include "uvx.h"

namespace jsd {

int check_config_and_print(const std::string& prog, const Config& cfg, const std::string& remote, bool need_key) {
  std::cout << config_to_json(cfg).dump(2) << "\n";
  std::string err;
  Target t;
  if (!remote.empty() && !resolve_target(cfg, remote, t, err)) {
    fprintf(stderr, "%s: error: %s\n", prog.c_str(), err.c_str());
    return kExitStartupError;
  }
  if (need_key) {
    // Keys, psk, certificate (its CA and expiry) and pinned keys, one line
    // per mistake.
    std::vector<std::string> errors;
    Trust trust;
    load_trust(cfg, trust, errors);
    for (auto& e : errors) fprintf(stderr, "%s: error: %s\n", prog.c_str(), e.c_str());
    if (!errors.empty()) return kExitStartupError;
  }
  return kExitOk;
}

}  // namespace jsd
