// The Noise Protocol Framework (revision 34), one suite only:
//   Noise_<pattern>_25519_ChaChaPoly_BLAKE2b
// built from libsodium primitives (crypto_scalarmult, crypto_aead_chacha20poly1305_ietf,
// crypto_generichash). CipherState, SymmetricState and HandshakeState follow spec
// sections 5.1-5.3 literally; HMAC/HKDF are spec section 4.3. Patterns: the one-way
// (N, K, X) and interactive (NN NK NX KN KK KX XN XK XX IN IK IX) ones of sections 7.4/7.5,
// with any pskN modifiers (section 9), e.g. "Noise_IKpsk2_..." or "Noise_XXpsk0+psk3_...".
//
// Nothing here throws: failures return false with a reason in `err`.
// Secrets are wiped with sodium_memzero when an object is destroyed (and as soon as a
// handshake no longer needs them).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jsd::noise {

constexpr size_t kDhLen = 32, kKeyLen = 32, kHashLen = 64, kTagLen = 16, kMaxMessage = 65535;
using Key32 = std::array<unsigned char, 32>;

struct KeyPair {
  Key32 priv{}, pub{};
  static KeyPair generate();
  static KeyPair from_private(const Key32& priv);  // pub = X25519(priv, base)
  void wipe();
  ~KeyPair() { wipe(); }  // every copy wipes itself (still an aggregate)
};

// Spec 5.1. Before initialize_key() the state has no key and, as the spec says,
// encrypt/decrypt pass data through unchanged (the handshake relies on that).
class CipherState {
 public:
  CipherState() = default;
  ~CipherState();  // wipes
  CipherState(const CipherState&) = delete;
  CipherState& operator=(const CipherState&) = delete;
  CipherState(CipherState&& o) noexcept;  // the source is wiped (left without key)
  CipherState& operator=(CipherState&& o) noexcept;

  void initialize_key(const Key32& k);  // n = 0
  bool has_key() const { return has_key_; }
  void set_nonce(uint64_t n) { n_ = n; }
  uint64_t nonce() const { return n_; }
  // The raw key, to hand a link's transport keys to its queue-server process.
  const Key32& key() const { return k_; }
  // Appends ciphertext (plain.size() + 16 bytes) to out; false if the nonce is exhausted
  // (n == 2^64-1 is reserved) or the ciphertext would exceed kMaxMessage.
  // `plain` must not point into `out`.
  bool encrypt_with_ad(std::string_view ad, std::string_view plain, std::string& out);
  // Appends the plaintext to out; false if authentication fails (then the nonce is NOT
  // advanced and out is unchanged). `cipher` must not point into `out`.
  bool decrypt_with_ad(std::string_view ad, std::string_view cipher, std::string& out);
  void rekey();  // spec 11.3; no-op without a key; n is unchanged
  void wipe();   // back to "no key", n = 0

 private:
  Key32 k_{};
  bool has_key_ = false;
  uint64_t n_ = 0;
};

// Spec 5.2. Used by HandshakeState; public so it can be tested on its own.
class SymmetricState {
 public:
  SymmetricState() = default;
  ~SymmetricState();
  SymmetricState(const SymmetricState&) = delete;
  SymmetricState& operator=(const SymmetricState&) = delete;
  SymmetricState(SymmetricState&& o) noexcept;
  SymmetricState& operator=(SymmetricState&& o) noexcept;

  void initialize(std::string_view protocol_name);
  void mix_key(std::string_view input_key_material);
  void mix_hash(std::string_view data);
  void mix_key_and_hash(std::string_view input_key_material);
  bool has_key() const { return cs_.has_key(); }
  // Both append to out; false on nonce exhaustion / authentication failure.
  bool encrypt_and_hash(std::string_view plain, std::string& out);
  bool decrypt_and_hash(std::string_view cipher, std::string& out);
  void split(CipherState& c1, CipherState& c2) const;
  std::string_view h() const { return {reinterpret_cast<const char*>(h_.data()), h_.size()}; }
  void wipe();

 private:
  CipherState cs_;
  std::array<unsigned char, kHashLen> ck_{}, h_{};
};

// Pattern tokens (spec 7.1, 9): message contents and the DH / psk operations.
enum class Token : unsigned char { E, S, EE, ES, SE, SS, PSK };

struct HandshakeConfig {
  std::string protocol_name;  // e.g. "Noise_IK_25519_ChaChaPoly_BLAKE2b"
  bool initiator = false;
  std::string prologue;
  std::optional<KeyPair> s;  // local static
  std::optional<KeyPair> e;  // local ephemeral: for test vectors only; generated when absent
  std::optional<Key32> rs;   // remote static known in advance (pre-message)
  std::vector<Key32> psks;   // consumed in order by psk tokens
};

// Spec 5.3. initialize() rejects a config that does not fit the pattern: a missing local
// static, a missing `rs` the pattern's pre-message needs, an `rs` the pattern does not
// take in advance (it would never be checked), or a psk count that differs from the
// number of psk tokens. Any failed read_message (and any failed write after the state
// has changed) leaves the state dead: every later call returns false ("handshake failed").
class HandshakeState {
 public:
  HandshakeState() = default;
  ~HandshakeState();
  HandshakeState(const HandshakeState&) = delete;
  HandshakeState& operator=(const HandshakeState&) = delete;
  HandshakeState(HandshakeState&& o) noexcept;  // the source is left uninitialized
  HandshakeState& operator=(HandshakeState&& o) noexcept;

  bool initialize(const HandshakeConfig& c, std::string& err);
  bool write_message(std::string_view payload, std::string& out, std::string& err);     // appends to out
  bool read_message(std::string_view message, std::string& payload, std::string& err);  // appends to payload
  bool complete() const;
  bool my_turn() const;  // true when this side writes the next handshake message
  bool failed() const { return failed_; }
  // After complete(): c1 encrypts initiator->responder, c2 responder->initiator (spec Split()).
  // Before that, both are left without key. One-way patterns (N, K, X) use c1 only.
  void split(CipherState& c1, CipherState& c2);
  const std::optional<Key32>& remote_static() const { return rs_; }
  std::string handshake_hash() const;  // h, 64 bytes raw (empty before initialize)

 private:
  bool live(std::string& err) const;
  bool fail(std::string& err, const char* why);
  bool mix_dh(Token t, std::string& err);
  void wipe_secrets();

  SymmetricState ss_;
  std::optional<KeyPair> s_, e_;
  std::optional<Key32> rs_, re_;
  std::vector<Key32> psks_;
  size_t next_psk_ = 0;
  std::vector<std::vector<Token>> messages_;
  size_t next_ = 0;  // index of the next handshake message; even = initiator writes
  bool initiator_ = false, psk_mode_ = false, initialized_ = false, failed_ = false;
};

}  // namespace jsd::noise
