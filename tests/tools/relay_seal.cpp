// Test helper: what a gateway that tampers with relayed requests can send,
// made with jsd's own sealing (relay.h). Prints one relay envelope (JSON):
//   relay_seal KEYFILE TARGET_PUBKEY ORIGIN TARGET OBJECT BODY VIA [OPTIONS]
// KEYFILE seals (the originator's key, or another node's for a forgery);
// VIA is a comma-separated list of gateways ("-" for none). Options:
//   --claim NAME   the envelope names NAME as the originator
//   --flip N       byte N of the sealed box is flipped (altered on its way)
//   --age S        sealed S seconds ago (negative: in the future)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "crypto.h"
#include "identity.h"
#include "relay.h"
#include "uvx.h"

int main(int argc, char** argv) {
  using namespace jsd;
  if (argc < 8) {
    fprintf(stderr,
            "usage: relay_seal KEYFILE TARGET_PUBKEY ORIGIN TARGET OBJECT BODY VIA [--claim N] [--flip N] "
            "[--age S]\n");
    return 2;
  }
  std::string err;
  if (!crypto_init(err)) return fprintf(stderr, "relay_seal: %s\n", err.c_str()), 1;
  Key32 priv{}, pub{}, target{};
  if (!load_node_key(argv[1], priv, pub, err)) return fprintf(stderr, "relay_seal: %s\n", err.c_str()), 1;
  if (!key_from_text(argv[2], target)) return fprintf(stderr, "relay_seal: bad target key\n"), 1;
  RelayRequest rq{argv[3], argv[4], uint64_t(wall_time() * 1000), new_relay_id(), Kind::call, argv[5], argv[6]};
  RelayEnvelope env{argv[3], argv[4], argv[5], {}, ""};
  std::string via = argv[7];
  for (size_t at = 0; via != "-" && at <= via.size();) {
    size_t comma = via.find(',', at);
    if (comma == std::string::npos) comma = via.size();
    env.via.push_back(via.substr(at, comma - at));
    at = comma + 1;
  }
  long flip = -1;
  for (int i = 8; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--claim"))
      env.origin = argv[i + 1];
    else if (!strcmp(argv[i], "--flip"))
      flip = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--age"))
      rq.sealed_ms = uint64_t(int64_t(rq.sealed_ms) - atoll(argv[i + 1]) * 1000);
  }
  env.box = seal_box(priv, target, encode_relay_request(rq));
  if (flip >= 0 && size_t(flip) < env.box.size()) env.box[size_t(flip)] ^= 1;
  printf("%s\n", encode_envelope(env).c_str());
  return 0;
}
