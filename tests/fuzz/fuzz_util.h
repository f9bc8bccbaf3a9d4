// Helpers shared by the fuzz harnesses (tests/fuzz/*_fuzz.cpp) and the seed
// generator: splitting one input into parts, and a fixed set of keys so that
// seeds made once (certificates signed by the fixed CA) stay valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace jsd_fuzz {

// Parts of one input are separated by the bytes FF FE, which no UTF-8 text
// (JSON, names, certificates) contains, so a text part mutates as text.
constexpr std::string_view kSep = "\xff\xfe";

inline std::vector<std::string_view> split(std::string_view in, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    size_t p = in.find(kSep);
    if (p == std::string_view::npos) break;
    parts.push_back(in.substr(0, p));
    in.remove_prefix(p + kSep.size());
  }
  parts.push_back(in);
  while (parts.size() < max_parts) parts.emplace_back();
  return parts;
}

inline std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? std::string(kSep) : "") + parts[i];
  return s;
}

// Crashes loudly (libFuzzer records the input) when an invariant breaks.
[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line) {
  fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
  abort();
}
#define FUZZ_CHECK(cond)                                                  \
  do {                                                                    \
    if (!(cond)) ::jsd_fuzz::invariant_failed(#cond, __FILE__, __LINE__); \
  } while (0)

}  // namespace jsd_fuzz
