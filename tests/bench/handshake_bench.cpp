// Handshakes per second one responder can authenticate: the Noise IK
// handshake of a link (both DH-heavy messages, the peer check), in memory,
// on one core. Prints "handshakes/s N" for bench.py.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "crypto.h"
#include "handshake.h"
#include "identity.h"
#include "trust.h"

using namespace jsd;

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  std::string err;
  if (!crypto_init(err)) return 1;
  char tmpl[] = "/tmp/jsd-hsbench.XXXXXX";
  std::string dir = mkdtemp(tmpl);
  Key32 apub{}, bpub{};
  if (!gen_node_key_file(dir + "/a.key", apub, err) || !gen_node_key_file(dir + "/b.key", bpub, err)) return 1;
  Config ca, cb;
  ca.node = "alpha";
  ca.key_file = dir + "/a.key";
  ca.peers["beta"] = {"127.0.0.3", 4455};
  ca.peer_keys["beta"] = {key_to_text(bpub)};
  cb.node = "beta";
  cb.key_file = dir + "/b.key";
  cb.peers["alpha"] = {"127.0.0.2", 4455};
  cb.peer_keys["alpha"] = {key_to_text(apub)};
  Trust ta, tb;
  std::vector<std::string> errors;
  if (!ta.load(ca, errors, 0) || !tb.load(cb, errors, 0)) return 1;
  unlink((dir + "/a.key").c_str());
  unlink((dir + "/b.key").c_str());
  rmdir(dir.c_str());
  // The initiators' messages are made first: only the responder's work is timed.
  std::vector<std::string> first(n);
  for (auto& f : first) {
    LinkInitiator li(ta, Hello{"alpha", "127.0.0.2:4455", "", ""}, "beta", bpub);
    if (!li.first(f, err)) return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  for (auto& f : first) {
    LinkResponder lr(tb, "beta");
    std::string out;
    if (lr.on_frame(f, out, err) != LinkResponder::Step::hello) return 1;
    if (!tb.check_peer(lr.hello().node, lr.peer_key(), lr.hello().cert, 0).ok) return 1;
    if (!lr.accept(50000, out, err)) return 1;
    SessionKeys k = lr.take_keys();
    k.wipe();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("handshakes/s %.0f (responder, one core, %d IK handshakes)\n", n / s, n);
  return 0;
}
