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

CliParse cli_parse_quietly(cxxopts::Options& opts, int argc, const char* const* argv, cxxopts::ParseResult& out,
                           std::string& text) {
  try {
    out = opts.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    text = opts.program() + ": error: " + e.what() + " (see --help)";
    return CliParse::error;
  }
  if (out.count("help")) {
    text = opts.help();
    return CliParse::print;
  }
  if (out.count("version")) {
    text = opts.program() + " " + JSD_VERSION + "\n";
    return CliParse::print;
  }
  return CliParse::ok;
}

bool cli_parse(cxxopts::Options& opts, int argc, char** argv, cxxopts::ParseResult& out, int usage_code,
               int& exit_code) {
  std::string text;
  switch (cli_parse_quietly(opts, argc, argv, out, text)) {
    case CliParse::ok:
      return true;
    case CliParse::print:
      std::cout << text << std::flush;
      exit_code = kExitOk;
      return false;
    case CliParse::error:
      fprintf(stderr, "%s\n", text.c_str());
      exit_code = usage_code;
      return false;
  }
  return true;
}

}  // namespace jsd
