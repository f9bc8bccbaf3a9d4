#include "cli.h"

#include <cstdio>
#include <iostream>

#include "crypto.h"
#include "jsd_version.h"

namespace jsd {

bool cli_load_config(const std::string& prog, const std::string& path, Config& cfg) {
  std::vector<std::string> errors;
  if (load_config(path, cfg, errors) && errors.empty()) return true;
  for (auto& e : errors) fprintf(stderr, "%s: error: %s\n", prog.c_str(), e.c_str());
  return false;
}

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

void cli_common_options(cxxopts::Options& opts) {
  opts.add_options()("f,config", "node configuration file (default: $JSD_CONFIG, else /etc/jsd/jsd.conf if it exists, else the embedded defaults)",
                     cxxopts::value<std::string>(), "FILE")(
      "h,help", "print this help and exit")("V,version", "print the version and exit");
}

bool cli_parse(cxxopts::Options& opts, int argc, char** argv, cxxopts::ParseResult& out, int usage_code,
               int& exit_code) {
  try {
    out = opts.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    fprintf(stderr, "%s: error: %s (see --help)\n", opts.program().c_str(), e.what());
    exit_code = usage_code;
    return false;
  }
  if (out.count("help")) {
    std::cout << opts.help() << std::flush;
    exit_code = 0;
    return false;
  }
  if (out.count("version")) {
    std::cout << opts.program() << " " << JSD_VERSION << "\n";
    exit_code = 0;
    return false;
  }
  return true;
}

}  // namespace jsd
