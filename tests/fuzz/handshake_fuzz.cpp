// libFuzzer harness: the link handshake's parsers (lib/link/handshake.h),
// both roles, with real keys (fuzz_world.h). Byte 0 picks the case; the rest
// is split into parts at FF FE (fuzz_util.h):
//   0: hello_from_json(part 0): the hello a responder reads;
//   1: raw frames (parts 0-3) to a LinkResponder;
//   2: raw frames (parts 0-3) to a LinkInitiator, IK or XX (byte 1);
//   3: IK: the accept payload (part 0), sealed by a real responder, to a
//      LinkInitiator;
//   4: XX: the answer payload (part 0: node, certificate) and the sealed
//      accept (part 1) from a real responder, to a LinkInitiator that wants
//      node part 2 (empty: any);
//   5: a real initiator's hello (part 0), IK or XX (byte 1), to a
//      LinkResponder, then the responder's accept and the peer check.
// Random bytes stop at the AEAD; cases 3-5 put fuzzed plaintext behind it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "fuzz_world.h"
#include "handshake.h"

namespace {

using jsd::noise::CipherState;
using jsd::noise::HandshakeConfig;
using jsd::noise::HandshakeState;

const char* kPrologue = "jsd link 1";  // as lib/link/handshake.cpp
constexpr int64_t kNow = 1700000000;

bool raw_state(HandshakeState& hs, bool ik, bool initiator) {
  auto& w = jsd_fuzz::world();
  HandshakeConfig c;
  c.protocol_name = ik ? "Noise_IK_25519_ChaChaPoly_BLAKE2b" : "Noise_XX_25519_ChaChaPoly_BLAKE2b";
  c.initiator = initiator;
  c.prologue = kPrologue;
  c.s = initiator ? w.alpha_kp : w.beta_kp;
  if (initiator && ik) c.rs = w.beta_kp.pub;
  std::string err;
  return hs.initialize(c, err);
}

jsd::Hello alpha_hello() { return {"alpha", "127.0.0.2:4455", "", ""}; }

void hello_roundtrip(std::string_view text) {
  jsd::Hello h;
  std::string err;
  if (!jsd::hello_from_json(text, h, err)) return;
  jsd::Hello h2;
  FUZZ_CHECK(jsd::hello_from_json(jsd::hello_to_json(h), h2, err));
  FUZZ_CHECK(h2.node == h.node && h2.addr == h.addr && h2.to == h.to && h2.cert == h.cert);
}

void raw_to_responder(const std::vector<std::string_view>& frames) {
  jsd::LinkResponder r(jsd_fuzz::world().beta, "beta");
  std::string out, err;
  for (auto f : frames) {
    auto st = r.on_frame(f, out, err);
    if (st == jsd::LinkResponder::Step::failed || st == jsd::LinkResponder::Step::refuse) return;
    if (st == jsd::LinkResponder::Step::hello) {
      FUZZ_CHECK(r.accept(50000, out, err));
      return;
    }
  }
}

void raw_to_initiator(bool ik, const std::vector<std::string_view>& frames) {
  auto& w = jsd_fuzz::world();
  std::optional<jsd::Key32> key;
  if (ik) key = w.beta_kp.pub;
  jsd::LinkInitiator in(w.alpha, alpha_hello(), "beta", key);
  std::string out, err;
  if (!in.first(out, err)) return;
  for (auto f : frames) {
    auto st = in.on_frame(f, out, err);
    if (st != jsd::LinkInitiator::Step::send) return;
  }
}

void ik_accept(std::string_view payload) {
  auto& w = jsd_fuzz::world();
  jsd::LinkInitiator in(w.alpha, alpha_hello(), "beta", w.beta_kp.pub);
  std::string m1, err, plain;
  FUZZ_CHECK(in.first(m1, err));
  HandshakeState hs;
  FUZZ_CHECK(raw_state(hs, true, false));
  FUZZ_CHECK(hs.read_message(std::string_view(m1).substr(2), plain, err));
  std::string m2 = "A", out;
  FUZZ_CHECK(hs.write_message(payload, m2, err));
  if (in.on_frame(m2, out, err) == jsd::LinkInitiator::Step::done)
    FUZZ_CHECK(in.server_node() == "beta" && in.port() != 0);
}

void xx_answer(std::string_view answer, std::string_view accept, std::string_view target) {
  auto& w = jsd_fuzz::world();
  jsd::LinkInitiator in(w.alpha, alpha_hello(), std::string(target), std::nullopt);
  std::string m1, err, plain, out;
  FUZZ_CHECK(in.first(m1, err));
  HandshakeState hs;
  FUZZ_CHECK(raw_state(hs, false, false));
  FUZZ_CHECK(hs.read_message(std::string_view(m1).substr(2), plain, err));
  std::string m2 = "x";
  FUZZ_CHECK(hs.write_message(answer, m2, err));
  if (in.on_frame(m2, out, err) != jsd::LinkInitiator::Step::send) return;
  // The initiator accepted beta's key for the name it claimed.
  FUZZ_CHECK(out.size() > 1 && out[0] == 'y');
  plain.clear();
  FUZZ_CHECK(hs.read_message(std::string_view(out).substr(1), plain, err));
  CipherState c1, c2;
  hs.split(c1, c2);
  std::string m3 = "P";
  FUZZ_CHECK(c2.encrypt_with_ad("", accept, m3));
  if (in.on_frame(m3, out, err) == jsd::LinkInitiator::Step::done) FUZZ_CHECK(in.port() != 0);
}

void hello_to_responder(bool ik, std::string_view hello) {
  auto& w = jsd_fuzz::world();
  jsd::LinkResponder r(w.beta, "beta");
  HandshakeState hs;
  FUZZ_CHECK(raw_state(hs, ik, true));
  std::string msg = ik ? std::string("I\0", 2) : std::string("X\0", 2), out, err, plain;
  jsd::LinkResponder::Step st;
  if (ik) {
    FUZZ_CHECK(hs.write_message(hello, msg, err));
    st = r.on_frame(msg, out, err);
  } else {
    FUZZ_CHECK(hs.write_message("", msg, err));
    FUZZ_CHECK(r.on_frame(msg, out, err) == jsd::LinkResponder::Step::send);
    FUZZ_CHECK(hs.read_message(std::string_view(out).substr(1), plain, err));
    std::string m3 = "y";
    FUZZ_CHECK(hs.write_message(hello, m3, err));
    st = r.on_frame(m3, out, err);
  }
  if (st != jsd::LinkResponder::Step::hello) return;
  FUZZ_CHECK(r.peer_key() == w.alpha_kp.pub);
  (void)w.beta.check_peer(r.hello().node, r.peer_key(), r.hello().cert, kNow);
  FUZZ_CHECK(r.accept(50001, out, err));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  bool flag = data[1] & 1;
  auto parts = jsd_fuzz::split(rest, 4);
  switch (data[0] % 6) {
    case 0:
      hello_roundtrip(rest);
      break;
    case 1:
      raw_to_responder(parts);
      break;
    case 2:
      raw_to_initiator(flag, parts);
      break;
    case 3:
      ik_accept(rest.substr(0, 60000));
      break;
    case 4:
      xx_answer(parts[0].substr(0, 60000), parts[1].substr(0, 60000), parts[2]);
      break;
    case 5:
      hello_to_responder(flag, rest.substr(0, 60000));
      break;
  }
  return 0;
}
