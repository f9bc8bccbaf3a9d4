// libFuzzer harness that nests (issue 24: an "error" nested 300,000 deep
// crash-looped a listener through dump()'s recursion). The input is split
// into a repeat count, an opening and a closing piece and a core: the
// document is the opening piece repeated, the core, the closing piece
// repeated, so that mutations explore deep and odd nestings (brackets in
// strings, escapes, unbalanced ones) with inputs of a few bytes. Every
// decoder of outside JSON gets it; each must refuse or accept without a
// crash, and what parse_json accepts nests at most kMaxJsonDepth deep
// (counted here without recursion), so dumping it is safe.
#include <sodium.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "fuzz_util.h"
#include "handshake.h"
#include "identity.h"
#include "job_record.h"
#include "job_request.h"
#include "jsd_limits.h"
#include "json_read.h"
#include "outbox.h"

namespace {

// The nesting of a parsed value, with an explicit stack.
int depth_of(const nlohmann::json& root) {
  int deepest = 0;
  std::vector<std::pair<const nlohmann::json*, int>> todo{{&root, 0}};
  while (!todo.empty()) {
    auto [j, d] = todo.back();
    todo.pop_back();
    if (!j->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (auto& e : *j) todo.push_back({&e, d + 1});
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = jsd_fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), 4);
  // Repeats: the count part's bytes, little-endian, up to 200,000.
  size_t n = 0;
  for (size_t i = 0; i < parts[0].size() && i < 3; ++i) n |= size_t(static_cast<uint8_t>(parts[0][i])) << (8 * i);
  n %= 200001;
  std::string_view open = parts[1].substr(0, 16), close = parts[2].substr(0, 16), core = parts[3];
  std::string doc;
  doc.reserve(n * (open.size() + close.size()) + core.size());
  for (size_t i = 0; i < n; ++i) doc += open;
  doc += core;
  for (size_t i = 0; i < n; ++i) doc += close;

  nlohmann::json j;
  std::string why;
  if (jsd::parse_json(doc, j, why)) {
    FUZZ_CHECK(depth_of(j) <= jsd::kMaxJsonDepth);
    FUZZ_CHECK(!j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).empty());
  } else {
    FUZZ_CHECK(!why.empty());
  }
  // Every decoder of outside JSON, on the same text: none may crash.
  std::string err;
  jsd::JobRequest req;
  jsd::parse_job_request(doc, req, err);
  jsd::JobRecord rec;
  jsd::parse_job_record(doc, rec, err);
  jsd::OutboxEntry e;
  jsd::parse_outbox_entry(doc, e, err);
  jsd::Hello h;
  jsd::hello_from_json(doc, h, err);
  // A certificate's body is read before its signature is checked.
  if (doc.size() < 3000) {
    std::string b64(sodium_base64_encoded_len(doc.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
    sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(doc.data()), doc.size(),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    b64.resize(strlen(b64.c_str()));
    jsd::Cert cert;
    jsd::parse_cert("jsdcert1." + b64 + "." + std::string(86, 'A'), cert, err);
  }
  jsd::Config c;
  std::vector<std::string> errors;
  jsd::parse_config_text(doc, c, errors);
  return 0;
}
