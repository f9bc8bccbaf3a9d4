// Link security, built only from libsodium primitives:
//  - the cluster key: 32 random bytes shared by all nodes (hex in a 0600 file);
//  - the handshake: fresh 32-byte nonces from both sides, each side proves it
//    holds the key with HMAC-SHA-512-256 (crypto_auth) over the transcript;
//  - per-link, per-direction session keys derived from the key and the
//    transcript (keyed BLAKE2b, then crypto_kdf);
//  - frame protection: ChaCha20-Poly1305 (IETF) with an implicit 64-bit
//    counter as nonce, so a forged, altered, replayed, dropped or reordered
//    frame fails to open and the link is closed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace jsd {

constexpr size_t kKeyBytes = 32;
constexpr size_t kMacBytes = 16;  // ChaCha20-Poly1305 tag
using Key = std::array<unsigned char, kKeyBytes>;

bool crypto_init(std::string& err);
void wipe(Key& k);
// Writes a new random key; refuses to overwrite an existing file.
bool generate_key_file(const std::string& path, std::string& err);
// Refuses a key file that group or others may read.
bool load_key_file(const std::string& path, Key& key, std::string& err);

struct SessionKeys {
  Key c2s{};  // client -> server direction
  Key s2c{};
  void wipe();
};

// The four handshake messages (JSON over frames on the listener port):
//   client -> server  {"t":"hello","v":1,"node":N,"addr":A,"nonce":hex}
//   server -> client  {"t":"challenge","node":N,"nonce":hex,"mac":hex} | {"t":"refused",...}
//   client -> server  {"t":"proof","mac":hex}
//   server -> client  {"t":"accept","port":P,"mac":hex}                | {"t":"refused",...}
class HandshakeClient {
 public:
  HandshakeClient(const Key& k, std::string node, std::string addr);
  std::string hello();
  // On success returns the proof message; else false with err.
  bool on_challenge(std::string_view msg, std::string& proof, std::string& err);
  bool on_accept(std::string_view msg, uint16_t& port, std::string& err);
  const std::string& server_node() const { return server_node_; }
  SessionKeys keys() const;

 private:
  Key k_;
  std::string node_, addr_, server_node_;
  unsigned char nonce_c_[32], nonce_s_[32];
  unsigned char transcript_[32];
};

class HandshakeServer {
 public:
  HandshakeServer(const Key& k, std::string node);
  // Parses the hello; the caller then checks the peer and calls challenge()
  // or refuse().
  bool on_hello(std::string_view msg, std::string& err);
  const std::string& client_node() const { return client_node_; }
  const std::string& client_addr() const { return client_addr_; }
  std::string challenge();
  bool on_proof(std::string_view msg, std::string& err);
  std::string accept(uint16_t port);
  static std::string refuse(const std::string& reason);
  SessionKeys keys() const;

 private:
  Key k_;
  std::string node_, client_node_, client_addr_;
  unsigned char nonce_c_[32], nonce_s_[32];
  unsigned char transcript_[32];
};

class SecureChannel {
 public:
  SecureChannel() = default;
  SecureChannel(const Key& tx, const Key& rx) : tx_(tx), rx_(rx), ready_(true) {}
  ~SecureChannel();
  bool ready() const { return ready_; }
  // Appends the ciphertext (plain.size() + kMacBytes bytes) to out.
  void seal(std::string_view plain, std::string& out);
  // Opens the next frame; false if it is not exactly the next frame the
  // peer sealed with this key (tampered, replayed, reordered, truncated).
  bool open(std::string_view cipher, std::string& plain);
  uint64_t sent() const { return tx_n_; }
  uint64_t received() const { return rx_n_; }

 private:
  Key tx_{}, rx_{};
  uint64_t tx_n_ = 0, rx_n_ = 0;
  bool ready_ = false;
};

std::string to_hex(const unsigned char* p, size_t n);
bool from_hex(std::string_view hex, unsigned char* out, size_t n);

}  // namespace jsd
