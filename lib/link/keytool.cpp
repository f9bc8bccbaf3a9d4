#include "keytool.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "crypto.h"
#include "exit_codes.h"
#include "identity.h"
#include "names.h"
#include "node_name.h"
#include "safe_path.h"

namespace jsd {

namespace {
int fail(const std::string& why) {
  fprintf(stderr, "jsd-listener: error: %s\n", why.c_str());
  return kExitStartupError;
}
}  // namespace

std::vector<std::string> split_groups(const std::string& csv) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= csv.size();) {
    size_t comma = std::min(csv.find(',', at), csv.size());
    if (comma > at) out.push_back(csv.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

int run_keytool(const KeyToolOptions& o) {
  std::string err;
  if (!crypto_init(err)) return fail(err);
  Key32 pub{};
  if (!o.gen_key.empty()) {
    if (!gen_node_key_file(o.gen_key, pub, err)) return fail(err);
    printf("%s\n", key_to_text(pub).c_str());
    return kExitOk;
  }
  if (!o.public_key.empty()) {
    Key32 priv{};
    bool ok = load_node_key(o.public_key, priv, pub, err);
    wipe(priv);
    if (!ok) return fail(err);
    printf("%s\n", key_to_text(pub).c_str());
    return kExitOk;
  }
  if (!o.gen_psk.empty()) {
    if (!gen_psk_file(o.gen_psk, err)) return fail(err);
    fprintf(stderr, "jsd-listener: wrote a new psk to %s (give it to every node as psk_file, mode 0600)\n",
            o.gen_psk.c_str());
    return kExitOk;
  }
  if (!o.gen_ca.empty()) {
    if (!gen_ca_file(o.gen_ca, pub, err)) return fail(err);
    printf("%s\n", key_to_text(pub).c_str());
    return kExitOk;
  }
  if (!o.sign_cert.empty()) {
    if (!valid_node_name(o.name)) return fail(std::string("--sign-cert needs --name NAME (") + kNodeNameRule + ")");
    for (auto& g : o.groups)
      if (!valid_name(g)) return fail("--groups: '" + g + "' is not a valid group name");
    if (o.days < 1 || o.days > 36500) return fail("--days: must be 1-36500");
    Cert c;
    if (!key_from_text(o.subject_key, c.key))
      return fail("'" + o.subject_key + "' is not a public key (44 characters of base64, as --gen-key prints)");
    // The CA key vouches for every node: trusted only where nobody but
    // root and the one signing could have changed it (safe_path.h).
    std::string real, why;
    PathOwners owners;
    owners.firm = {0, geteuid()};
    if (canonical_path(o.sign_cert, real, why) && !check_trusted_path(o.sign_cert, PathKind::secret, owners, real, why))
      return fail("refusing the CA key file " + o.sign_cert + ": " + why);
    CaKey ca;
    if (!load_ca_key(o.sign_cert, ca, err)) return fail(err);
    c.name = o.name;
    c.groups = o.groups;
    // Valid from a minute ago: clocks of a cluster are never quite equal.
    c.not_before = static_cast<int64_t>(time(nullptr)) - 60;
    c.not_after = c.not_before + 60 + int64_t(o.days) * 86400;
    std::string text = sign_cert(ca, c);
    ca.wipe();
    if (text.empty()) return fail("cannot sign the certificate");
    printf("%s\n", text.c_str());
    return kExitOk;
  }
  return fail("no key action given");
}

}  // namespace jsd
