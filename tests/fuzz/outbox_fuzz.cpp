// libFuzzer harness: a durable outbox file as read back at start-up. The
// decoder must never throw; an entry it accepts has a usable file name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "names.h"
#include "outbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  jsd::OutboxEntry e;
  std::string err;
  bool ok = jsd::parse_outbox_entry(std::string_view(reinterpret_cast<const char*>(data), size), e, err);
  if (ok && !jsd::valid_name(e.id)) abort();
  if (!ok && err.empty()) abort();
  return 0;
}
