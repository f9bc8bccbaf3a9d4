#include "check_config.h"

#include <cstdio>
#include <iostream>

#include "crypto.h"

namespace jsd {

int check_config_and_print(const std::string& prog, const Config& cfg, const std::string& remote, bool need_key) {
  std::cout << config_to_json(cfg).dump(2) << "\n";
  std::string err;
  Target t;
  if (!remote.empty() && !resolve_target(cfg, remote, t, err)) {
    fprintf(stderr, "%s: error: %s\n", prog.c_str(), err.c_str());
    return 1;
  }
  if (need_key) {
    Key k;
    if (!crypto_init(err) || !load_key_file(cfg.key_file, k, err)) {
      fprintf(stderr, "%s: error: %s\n", prog.c_str(), err.c_str());
      return 1;
    }
    wipe(k);
  }
  return 0;
}

}  // namespace jsd
