// What sealing and opening one relayed request costs (relay.h, box_keys.h):
// a 200-byte request sealed by its originator and opened at its target, in
// memory, on one core; first with crypto_box_easy (an X25519
// multiplication per message, seal_box/open_box), then with the shared key
// kept per pair of keys (BoxKeyCache, as the listener does). Prints
// microseconds per seal+open for bench.py.
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "box_keys.h"
#include "crypto.h"
#include "relay.h"

using namespace jsd;

namespace {

struct Pair {
  Key32 priv{}, pub{};
  Pair() {
    randombytes_buf(priv.data(), priv.size());
    crypto_scalarmult_base(pub.data(), priv.data());
  }
};

template <class Seal, class Open>
double us_per_op(int n, const std::string& plain, Seal seal, Open open) {
  std::string got;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    if (!open(seal(plain), got) || got.size() != plain.size()) return -1;
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  if (n <= 0) return 2;
  std::string err;
  if (!crypto_init(err)) return 1;
  Pair alpha, gamma;
  std::string plain(200, '\0');
  randombytes_buf(plain.data(), plain.size());
  double before = us_per_op(
      n, plain, [&](const std::string& p) { return seal_box(alpha.priv, gamma.pub, p); },
      [&](const std::string& s, std::string& out) { return open_box(gamma.priv, alpha.pub, s, out); });
  // One cache per node, as each listener has its own.
  BoxKeyCache at_alpha, at_gamma;
  double after = us_per_op(
      n, plain, [&](const std::string& p) { return at_alpha.seal(alpha.priv, gamma.pub, p); },
      [&](const std::string& s, std::string& out) { return at_gamma.open(gamma.priv, alpha.pub, s, out); });
  if (before < 0 || after < 0) return 1;
  printf("relay box seal+open us/op %.2f per-message key, %.2f kept key (200-byte request, %d ops, one core)\n", before,
         after, n);
  return 0;
}
