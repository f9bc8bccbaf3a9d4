// libFuzzer harness: the configuration parser (parse_config_text in
// lib/base/config.h) on a file's text, and what jsd-listener -t does next
// (config_to_json, dump). Checks that a configuration that parses is
// printed as one that parses again to the same JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  jsd::Config c = jsd::default_config();
  std::vector<std::string> errors;
  bool ok = jsd::parse_config_text(text, c, errors);
  FUZZ_CHECK(ok == errors.empty());
  for (auto& e : errors) FUZZ_CHECK(e.find('\n') == std::string::npos);  // one line per mistake
  if (!ok) return 0;
  std::string printed = jsd::config_to_json(c).dump(2);
  jsd::Config c2 = jsd::default_config();
  std::vector<std::string> errors2;
  FUZZ_CHECK(jsd::parse_config_text(printed, c2, errors2));
  FUZZ_CHECK(jsd::config_to_json(c2).dump(2) == printed);
  return 0;
}
