#include "cli.h"

#include <cstdio>
#include <iostream>

#include "exit_codes.h"
#include "jsd_version.h"

namespace jsd {

bool cli_load_config(const std::string& prog, const std::string& path, Config& cfg) {
  std::vector<std::string> errors;
  if (load_config(path, cfg, errors) && errors.empty()) return true;
  for (auto& e : errors) fprintf(stderr, "%s: error: %s\n", prog.c_str(), e.c_str());
  return false;
}

void cli_common_options(cxxopts::Options& opts) {
  opts.add_options()(
      "f,config",
      "node configuration file (default: $JSD_CONFIG, else /etc/jsd/jsd.conf if it exists, else the embedded defaults)",
      cxxopts::value<std::string>(),
      "FILE")("h,help", "print this help and exit")("V,version", "print the version and exit");
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
    exit_code = kExitOk;
    return false;
  }
  if (out.count("version")) {
    std::cout << opts.program() << " " << JSD_VERSION << "\n";
    exit_code = kExitOk;
    return false;
  }
  return true;
}

}  // namespace jsd
