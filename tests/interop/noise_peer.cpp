// Interop driver for lib/link/noise.cpp, run by noise_interop.py against another Noise
// implementation. It speaks Noise messages on stdin/stdout, each preceded by a 2-byte
// big-endian length, and reports on stderr:
//   handshake: writes "hello from jsd <n>" as the payload of handshake message n and expects
//              "hello from peer <n>" in the peer's;
//   transport: sends "jsd transport 0..2", then reads 3 messages, expects
//              "peer transport <i>" and answers each with "echo: <plaintext>".
// Exits 0 only if everything decrypted and matched.
//
// usage: noise_peer initiator|responder PROTOCOL STATIC_PRIV_HEX REMOTE_PUB_HEX|- PSK_HEX[,PSK_HEX...]|- PROLOGUE_HEX|-
#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "noise.h"

namespace {

using namespace jsd::noise;

bool unhex(const std::string& h, std::string& out) {
  out.assign(h.size() / 2, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), h.data(), h.size(), nullptr, &len,
                     &end) != 0 ||
      end != h.data() + h.size())
    return false;
  out.resize(len);
  return true;
}

bool key32(const std::string& h, Key32& k) {
  std::string b;
  if (!unhex(h, b) || b.size() != k.size()) return false;
  std::copy(b.begin(), b.end(), k.begin());
  return true;
}

std::string hex(std::string_view s) {
  std::string out(s.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size());
  out.pop_back();
  return out;
}

bool send(const std::string& msg) {
  const unsigned char len[2] = {static_cast<unsigned char>(msg.size() >> 8), static_cast<unsigned char>(msg.size())};
  return msg.size() <= kMaxMessage && std::fwrite(len, 1, 2, stdout) == 2 &&
         std::fwrite(msg.data(), 1, msg.size(), stdout) == msg.size() && std::fflush(stdout) == 0;
}

bool recv(std::string& msg) {
  unsigned char len[2];
  if (std::fread(len, 1, 2, stdin) != 2) return false;
  msg.assign(static_cast<size_t>(len[0]) << 8 | len[1], '\0');
  return std::fread(msg.data(), 1, msg.size(), stdin) == msg.size();
}

int fail(const std::string& why) {
  std::fprintf(stderr, "jsd: FAIL: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7)
    return fail(
        "usage: noise_peer initiator|responder PROTOCOL STATIC_PRIV_HEX REMOTE_PUB_HEX|- PSK_HEX[,...]|- "
        "PROLOGUE_HEX|-");
  const std::string role = argv[1], rs = argv[4], psks = argv[5], prologue = argv[6];
  if (sodium_init() < 0) return fail("sodium_init");
  HandshakeConfig c;
  c.protocol_name = argv[2];
  c.initiator = role == "initiator";
  if (!c.initiator && role != "responder") return fail("role must be initiator or responder");
  Key32 k;
  if (!key32(argv[3], k)) return fail("bad static key");
  c.s = KeyPair::from_private(k);
  if (rs != "-") {
    if (!key32(rs, k)) return fail("bad remote static key");
    c.rs = k;
  }
  for (size_t at = 0; psks != "-" && at <= psks.size();) {
    const size_t comma = std::min(psks.find(',', at), psks.size());
    if (!key32(psks.substr(at, comma - at), k)) return fail("bad psk");
    c.psks.push_back(k);
    at = comma + 1;
  }
  if (prologue != "-" && !unhex(prologue, c.prologue)) return fail("bad prologue");

  HandshakeState hs;
  std::string err, msg, payload;
  if (!hs.initialize(c, err)) return fail("initialize: " + err);
  for (int n = 0; !hs.complete(); ++n) {
    msg.clear(), payload.clear();
    if (hs.my_turn()) {
      if (!hs.write_message("hello from jsd " + std::to_string(n), msg, err)) return fail("write: " + err);
      if (!send(msg)) return fail("send");
      std::fprintf(stderr, "jsd: sent handshake message %d (%zu bytes)\n", n, msg.size());
    } else {
      if (!recv(msg)) return fail("peer closed during handshake");
      if (!hs.read_message(msg, payload, err)) return fail("read handshake message " + std::to_string(n) + ": " + err);
      if (payload != "hello from peer " + std::to_string(n)) return fail("unexpected payload: " + payload);
      std::fprintf(stderr, "jsd: read handshake message %d: \"%s\"\n", n, payload.c_str());
    }
  }
  std::fprintf(stderr, "jsd: handshake hash %s\n", hex(hs.handshake_hash()).c_str());
  if (hs.remote_static())
    std::fprintf(stderr, "jsd: remote static %s\n",
                 hex({reinterpret_cast<const char*>(hs.remote_static()->data()), 32}).c_str());

  CipherState c1, c2;
  hs.split(c1, c2);
  CipherState& tx = c.initiator ? c1 : c2;  // c1 carries initiator -> responder
  CipherState& rx = c.initiator ? c2 : c1;
  for (int i = 0; i < 3; ++i) {
    msg.clear();
    if (!tx.encrypt_with_ad("", "jsd transport " + std::to_string(i), msg) || !send(msg)) return fail("send transport");
  }
  for (int i = 0; i < 3; ++i) {
    msg.clear(), payload.clear();
    if (!recv(msg)) return fail("peer closed during transport");
    if (!rx.decrypt_with_ad("", msg, payload))
      return fail("transport message " + std::to_string(i) + " does not decrypt");
    if (payload != "peer transport " + std::to_string(i)) return fail("unexpected transport payload: " + payload);
    std::fprintf(stderr, "jsd: read transport message %d: \"%s\"\n", i, payload.c_str());
    msg.clear();
    if (!tx.encrypt_with_ad("", "echo: " + payload, msg) || !send(msg)) return fail("send echo");
  }
  std::fprintf(stderr, "jsd: OK\n");
  return 0;
}
