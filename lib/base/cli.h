// Helpers shared by the mains in cmd/: config loading with one error line
// per mistake, and the common --help/--version behaviour.
#pragma once

#include <cxxopts.hpp>
#include <string>

#include "config.h"

// Each argument is one value, commas and all (see CMakeLists.txt): a
// parameter value may hold any character but NUL (jsd-submit(1)).
static_assert(CXXOPTS_VECTOR_DELIMITER == '\0', "build with -DCXXOPTS_VECTOR_DELIMITER='\\0'");

namespace jsd {

// The longest time an option takes (jsd-submit --timeout, jsd-ping -i and
// -W): about three years, so that it still fits in 64 bits as nanoseconds.
// A time is range-checked before any arithmetic (1e20 overflowed).
constexpr double kMaxSeconds = 1e8;

// Loads --config FILE (or $JSD_CONFIG, /etc/jsd/jsd.conf, the embedded
// defaults). Prints "prog: error: ..." lines and returns false on mistakes.
bool cli_load_config(const std::string& prog, const std::string& path, Config& cfg);

// Adds --config, --help, --version to an option set.
void cli_common_options(cxxopts::Options& opts);

// Parses argv; on --help/--version prints and sets exit_code (0). On a usage
// error prints one line and sets exit_code to usage_code. Returns false when
// the caller should exit with exit_code.
bool cli_parse(cxxopts::Options& opts, int argc, char** argv, cxxopts::ParseResult& out, int usage_code,
               int& exit_code);

// The same, printing nothing: ok, or what to print (--help, --version:
// text for standard output) or the usage error ("prog: error: ... (see
// --help)", one line without its newline), for a caller that reports it.
enum class CliParse { ok, print, error };
CliParse cli_parse_quietly(cxxopts::Options& opts, int argc, const char* const* argv, cxxopts::ParseResult& out,
                           std::string& text);

}  // namespace jsd
