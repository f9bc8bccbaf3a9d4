// libFuzzer harness: a job request as a peer or a local tool sends it
// (issue 13: one such request aborted a listener). The decoder must never
// throw, and what it accepts must hold the promises the runner relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "job_request.h"
#include "names.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  jsd::JobRequest req;
  std::string err;
  bool ok = jsd::parse_job_request(std::string_view(reinterpret_cast<const char*>(data), size), req, err);
  if (!ok && err.empty()) abort();  // every refusal says why
  if (ok && req.op == jsd::JobRequest::Op::kSubmit) {
    if (!jsd::valid_name(req.id)) abort();
    if (!req.adhoc && !req.argv.empty()) abort();  // argv only for an ad-hoc command
    for (auto& [k, v] : req.params)
      if (k.empty() || v.find('\0') != std::string::npos) abort();
  }
  return 0;
}
