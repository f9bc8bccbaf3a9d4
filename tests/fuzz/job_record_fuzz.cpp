// libFuzzer harness: a job record file as read back at start-up (issue 13:
// "pid": 7E51 was a float-to-int overflow). The decoder must never throw,
// and a record it accepts must survive its own round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "job_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  jsd::JobRecord r;
  std::string err;
  if (!jsd::parse_job_record(std::string_view(reinterpret_cast<const char*>(data), size), r, err)) {
    if (err.empty()) abort();  // every refusal says why
    return 0;
  }
  int status = r.exit_status();
  if (status < 0 || status > 255) abort();
  jsd::JobRecord back;
  if (!jsd::parse_job_record(r.to_json().dump(), back, err)) abort();
  if (back.to_json() != r.to_json()) abort();
  return 0;
}
