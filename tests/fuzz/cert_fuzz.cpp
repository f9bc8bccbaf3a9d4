// libFuzzer harness: certificates and key texts (lib/link/identity.h), which
// a node reads from its peers' handshakes. Byte 0 picks what the rest is:
//   0: certificate text (jsdcert1.<body>.<sig>) for parse_cert + check_cert;
//   1: a certificate body (JSON) that the harness signs with its fixed CA,
//      so the field checks behind the signature are reached;
//   2: a key text for key_from_text.
// Checks: what parses re-signs to an equal certificate; a key text that
// decodes is the canonical text of its key.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "fuzz_world.h"
#include "identity.h"

namespace {

std::string b64url(std::string_view s) {
  std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);
  return out;
}

// The text parse_cert would get for this body, signed by the fixed CA.
std::string signed_text(std::string_view body) {
  std::string msg = std::string("jsd-cert-v1", 12) + std::string(body);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                       jsd_fuzz::world().ca.sk.data());
  return "jsdcert1." + b64url(body) + "." + b64url(std::string_view(reinterpret_cast<char*>(sig), sizeof sig));
}

void check_parsed(const jsd::Cert& c) {
  std::string err;
  (void)jsd::check_cert(c, jsd_fuzz::world().cas, {}, 1700000000, err);
  if (c.ca != jsd_fuzz::world().ca.pub) return;
  std::string again = jsd::sign_cert(jsd_fuzz::world().ca, c);
  FUZZ_CHECK(!again.empty());
  jsd::Cert c2;
  FUZZ_CHECK(jsd::parse_cert(again, c2, err));
  FUZZ_CHECK(c2.name == c.name && c2.groups == c.groups && c2.key == c.key && c2.ca == c.ca &&
             c2.not_before == c.not_before && c2.not_after == c.not_after);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  jsd::Cert c;
  std::string err;
  switch (data[0] % 3) {
    case 0:
      if (jsd::parse_cert(rest, c, err)) check_parsed(c);
      break;
    case 1:
      if (rest.size() > jsd::kMaxCertText) return 0;
      if (jsd::parse_cert(signed_text(rest), c, err)) check_parsed(c);
      break;
    case 2: {
      jsd::Key32 k{};
      if (jsd::key_from_text(rest, k)) FUZZ_CHECK(jsd::key_to_text(k) == rest);
      break;
    }
  }
  return 0;
}
