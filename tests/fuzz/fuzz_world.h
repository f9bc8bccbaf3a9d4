// Fixed identities for the fuzz harnesses and their seed generator: the node
// keys of alpha and beta and a CA, made from constant bytes, so that a seed
// holding a certificate signed by this CA stays valid. Never use these keys
// anywhere else.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "identity.h"
#include "noise.h"
#include "trust.h"

namespace jsd_fuzz {

inline jsd::Key32 fixed_key(unsigned char salt) {
  jsd::Key32 k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(salt + 7 * i);
  return k;
}

struct World {
  jsd::noise::KeyPair alpha_kp, beta_kp;
  jsd::CaKey ca;
  std::string beta_cert, alpha_cert;  // signed by ca, valid until 9999
  jsd::Trust alpha, beta;             // alpha pins nothing and trusts ca; beta pins alpha's key
  std::vector<jsd::Key32> cas;

  World() {
    char tmpl[] = "/tmp/jsd-fuzz-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    auto write = [&](const std::string& name, const std::string& text) {
      std::string p = dir + "/" + name;
      FILE* f = fopen(p.c_str(), "w");
      fchmod(fileno(f), 0600);
      fputs(text.c_str(), f);
      fclose(f);
      return p;
    };
    alpha_kp = jsd::noise::KeyPair::from_private(fixed_key(1));
    beta_kp = jsd::noise::KeyPair::from_private(fixed_key(2));
    std::string err;
    std::string ca_file = write("ca.key", jsd::key_to_text(fixed_key(3)) + "\n");
    if (!jsd::load_ca_key(ca_file, ca, err)) die(err);
    cas.push_back(ca.pub);
    beta_cert = sign("beta", beta_kp.pub);
    alpha_cert = sign("alpha", alpha_kp.pub);

    jsd::Config a = jsd::default_config();
    a.node = "alpha";
    a.key_file = write("alpha.key", jsd::key_to_text(alpha_kp.priv) + "\n");
    a.cert_file = write("alpha.cert", alpha_cert + "\n");
    a.trusted_cas = {jsd::key_to_text(ca.pub)};
    jsd::Config b = jsd::default_config();
    b.node = "beta";
    b.key_file = write("beta.key", jsd::key_to_text(beta_kp.priv) + "\n");
    b.peers["alpha"] = {"127.0.0.2", 4455};
    b.peer_keys["alpha"] = {jsd::key_to_text(alpha_kp.pub)};
    std::vector<std::string> errors;
    if (!jsd::load_trust(a, alpha, errors) || !jsd::load_trust(b, beta, errors)) die(errors.at(0));
    for (auto* f : {"ca.key", "alpha.key", "alpha.cert", "beta.key"}) unlink((dir + "/" + f).c_str());
    rmdir(dir.c_str());
  }
  std::string sign(const std::string& name, const jsd::Key32& key) const {
    jsd::Cert c;
    c.name = name;
    c.groups = {"ops"};
    c.key = key;
    c.not_before = 0;
    c.not_after = 253402300799;
    return jsd::sign_cert(ca, c);
  }
  [[noreturn]] static void die(const std::string& why) {
    fprintf(stderr, "fuzz world: %s\n", why.c_str());
    abort();
  }
};

inline World& world() {
  static World* w = new World();  // never destroyed: harness inputs may run until exit
  return *w;
}

}  // namespace jsd_fuzz
