// The operator's key tooling, modelled on ssh-keygen: node keys, psks, a
// cluster CA and the certificates it signs. Behind jsd-listener --gen-key,
// --public-key, --gen-psk, --gen-ca and --sign-cert.
#pragma once

#include <string>
#include <vector>

namespace jsd {

struct KeyToolOptions {
  std::string gen_key, public_key, gen_psk, gen_ca, sign_cert;  // the FILE of the one action
  std::string name;                                             // --sign-cert: the node's name
  std::vector<std::string> groups;
  int days = 365;
  std::string subject_key;  // --sign-cert: the node's public key (base64)
};

// --groups G,...: the names between its commas (empty ones skipped).
std::vector<std::string> split_groups(const std::string& csv);

// Runs the one action set; prints results on stdout, "jsd-listener: error:"
// lines on stderr. Returns the exit code (0, or 1).
int run_keytool(const KeyToolOptions& o);

}  // namespace jsd
