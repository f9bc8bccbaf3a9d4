// Noise Protocol Framework, revision 34: 25519 / ChaChaPoly / BLAKE2b. See noise.h.
// Section numbers in comments refer to https://noiseprotocol.org/noise.html (rev 34).
#include "noise.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <utility>

namespace jsd::noise {
namespace {

constexpr size_t kBlockLen = 128;           // BLAKE2b's BLOCKLEN, which HMAC pads keys to
constexpr uint64_t kMaxNonce = UINT64_MAX;  // 2^64-1: reserved (5.1), used only by rekey
constexpr size_t kNonceLen = crypto_aead_chacha20poly1305_IETF_NPUBBYTES;

// A temporary that holds key material and wipes itself whatever path leaves the scope.
template <size_t N>
struct Secret : std::array<unsigned char, N> {
  ~Secret() { sodium_memzero(this->data(), N); }
};
using Hash = Secret<kHashLen>;
using HashBytes = std::array<unsigned char, kHashLen>;  // what Hash and SymmetricState's ck share

bool sodium_ready() {
  static const bool ok = sodium_init() >= 0;  // thread-safe, idempotent
  return ok;
}

std::string_view sv(const unsigned char* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }
template <size_t N>
std::string_view sv(const std::array<unsigned char, N>& a) {
  return sv(a.data(), N);
}
const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// HMAC-HASH (4.3) is RFC 2104 HMAC over BLAKE2b with a 128-byte block, deliberately not
// BLAKE2b's built-in keyed mode: the two give different outputs and interop needs HMAC.
// Noise keys are always 64 bytes, so the "hash keys longer than a block" step never applies.
void hmac(Hash& out, std::string_view key, std::initializer_list<std::string_view> data) {
  Secret<kBlockLen> block{}, pad;
  Hash inner;
  std::memcpy(block.data(), key.data(), std::min(key.size(), kBlockLen));
  auto pass = [&](unsigned char x, std::initializer_list<std::string_view> parts, unsigned char* result) {
    crypto_generichash_state st;
    for (size_t i = 0; i < kBlockLen; ++i) pad[i] = block[i] ^ x;
    crypto_generichash_init(&st, nullptr, 0, kHashLen);
    crypto_generichash_update(&st, pad.data(), kBlockLen);
    for (auto d : parts) crypto_generichash_update(&st, bytes(d), d.size());
    crypto_generichash_final(&st, result, kHashLen);
    sodium_memzero(&st, sizeof st);
  };
  pass(0x36, data, inner.data());       // H((K ^ ipad) || data)
  pass(0x5c, {sv(inner)}, out.data());  // H((K ^ opad) || inner)
}

// HKDF (4.3) with 2 or 3 outputs (o3 == nullptr for 2). o1 may alias ck: ck is only
// read to derive temp_key, before any output is written.
void hkdf(const HashBytes& ck, std::string_view ikm, HashBytes& o1, Hash& o2, Hash* o3) {
  Hash temp_key, out1;
  const unsigned char one = 1, two = 2, three = 3;
  hmac(temp_key, sv(ck), {ikm});
  hmac(out1, sv(temp_key), {sv(&one, 1)});
  hmac(o2, sv(temp_key), {sv(out1), sv(&two, 1)});
  if (o3) hmac(*o3, sv(temp_key), {sv(o2), sv(&three, 1)});
  o1 = out1;
}

// HASHLEN is 64, so cipher keys taken from HKDF outputs are truncated to 32 bytes (5.2).
void init_truncated(CipherState& cs, const Hash& h) {
  Secret<kKeyLen> k;
  std::memcpy(k.data(), h.data(), kKeyLen);
  cs.initialize_key(k);
}

// ChaChaPoly nonce (12.3): 4 zero bytes, then the 64-bit counter little-endian.
void make_nonce(uint64_t n, unsigned char out[kNonceLen]) {
  std::memset(out, 0, 4);
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<unsigned char>(n >> (8 * i));
}

}  // namespace

// ---- KeyPair ---------------------------------------------------------------------------
KeyPair KeyPair::generate() {
  sodium_ready();
  Secret<32> priv;
  randombytes_buf(priv.data(), priv.size());
  return from_private(priv);
}

KeyPair KeyPair::from_private(const Key32& priv) {
  KeyPair kp{priv, {}};
  crypto_scalarmult_base(kp.pub.data(), kp.priv.data());  // X25519 clamps the scalar itself
  return kp;
}

void KeyPair::wipe() {
  sodium_memzero(priv.data(), priv.size());
  sodium_memzero(pub.data(), pub.size());
}

// ---- CipherState (5.1) -----------------------------------------------------------------
CipherState::~CipherState() { wipe(); }
CipherState::CipherState(CipherState&& o) noexcept { *this = std::move(o); }
CipherState& CipherState::operator=(CipherState&& o) noexcept {
  if (this != &o) {
    k_ = o.k_, has_key_ = o.has_key_, n_ = o.n_;
    o.wipe();  // a key lives in one place only
  }
  return *this;
}

void CipherState::initialize_key(const Key32& k) { k_ = k, has_key_ = true, n_ = 0; }

void CipherState::wipe() {
  sodium_memzero(k_.data(), k_.size());
  has_key_ = false, n_ = 0;
}

bool CipherState::encrypt_with_ad(std::string_view ad, std::string_view plain, std::string& out) {
  if (!has_key_) return out.append(plain), true;
  if (n_ == kMaxNonce || plain.size() > kMaxMessage - kTagLen) return false;
  unsigned char nonce[kNonceLen];
  make_nonce(n_, nonce);
  const size_t at = out.size();
  out.resize(at + plain.size() + kTagLen);
  crypto_aead_chacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data()) + at, nullptr, bytes(plain),
                                            plain.size(), bytes(ad), ad.size(), nullptr, nonce, k_.data());
  ++n_;
  return true;
}

bool CipherState::decrypt_with_ad(std::string_view ad, std::string_view cipher, std::string& out) {
  if (!has_key_) return out.append(cipher), true;
  if (n_ == kMaxNonce || cipher.size() < kTagLen || cipher.size() > kMaxMessage) return false;
  unsigned char nonce[kNonceLen];
  make_nonce(n_, nonce);
  const size_t at = out.size();
  out.resize(at + cipher.size() - kTagLen);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(out.data()) + at, nullptr, nullptr,
                                                bytes(cipher), cipher.size(), bytes(ad), ad.size(), nonce,
                                                k_.data()) != 0) {
    out.resize(at);  // n stays, so the genuine message can still be read after a forgery
    return false;
  }
  ++n_;
  return true;
}

// 11.3: k = first 32 bytes of ENCRYPT(k, 2^64-1, empty ad, 32 zero bytes). Calls the AEAD
// directly because EncryptWithAd refuses the reserved nonce.
void CipherState::rekey() {
  if (!has_key_) return;
  const unsigned char zeros[kKeyLen] = {0};
  Secret<kKeyLen + kTagLen> buf;
  unsigned char nonce[kNonceLen];
  make_nonce(kMaxNonce, nonce);
  crypto_aead_chacha20poly1305_ietf_encrypt(buf.data(), nullptr, zeros, kKeyLen, nullptr, 0, nullptr, nonce, k_.data());
  std::memcpy(k_.data(), buf.data(), kKeyLen);
}

// ---- SymmetricState (5.2) --------------------------------------------------------------
SymmetricState::~SymmetricState() { wipe(); }
SymmetricState::SymmetricState(SymmetricState&& o) noexcept { *this = std::move(o); }
SymmetricState& SymmetricState::operator=(SymmetricState&& o) noexcept {
  if (this != &o) {
    cs_ = std::move(o.cs_), ck_ = o.ck_, h_ = o.h_;
    o.wipe();
  }
  return *this;
}

void SymmetricState::wipe() {
  cs_.wipe();
  sodium_memzero(ck_.data(), ck_.size());
  sodium_memzero(h_.data(), h_.size());
}

void SymmetricState::initialize(std::string_view protocol_name) {
  wipe();  // also InitializeKey(empty)
  if (protocol_name.size() <= kHashLen)
    std::memcpy(h_.data(), protocol_name.data(), protocol_name.size());  // zero-padded
  else
    crypto_generichash(h_.data(), kHashLen, bytes(protocol_name), protocol_name.size(), nullptr, 0);
  ck_ = h_;
}

void SymmetricState::mix_key(std::string_view ikm) {
  Hash temp_k;
  hkdf(ck_, ikm, ck_, temp_k, nullptr);
  init_truncated(cs_, temp_k);
}

void SymmetricState::mix_hash(std::string_view data) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, kHashLen);
  crypto_generichash_update(&st, h_.data(), kHashLen);
  crypto_generichash_update(&st, bytes(data), data.size());
  crypto_generichash_final(&st, h_.data(), kHashLen);
}

// Used for psk tokens (9.2): ck, temp_h, temp_k = HKDF(ck, ikm, 3).
void SymmetricState::mix_key_and_hash(std::string_view ikm) {
  Hash temp_h, temp_k;
  hkdf(ck_, ikm, ck_, temp_h, &temp_k);
  mix_hash(sv(temp_h));
  init_truncated(cs_, temp_k);
}

bool SymmetricState::encrypt_and_hash(std::string_view plain, std::string& out) {
  const size_t at = out.size();
  if (!cs_.encrypt_with_ad(h(), plain, out)) return false;
  mix_hash(std::string_view(out).substr(at));
  return true;
}

bool SymmetricState::decrypt_and_hash(std::string_view cipher, std::string& out) {
  if (!cs_.decrypt_with_ad(h(), cipher, out)) return false;
  mix_hash(cipher);
  return true;
}

void SymmetricState::split(CipherState& c1, CipherState& c2) const {
  Hash t1, t2;
  hkdf(ck_, {}, t1, t2, nullptr);
  init_truncated(c1, t1);
  init_truncated(c2, t2);
}

// ---- Handshake patterns (7.4, 7.5, 9) --------------------------------------------------
namespace {

// In the spec's notation: initiator's and responder's pre-messages, then the messages
// separated by '|' (the initiator writes the first, then the sides alternate).
struct PatternText {
  const char *name, *pre_i, *pre_r, *messages;
};
constexpr PatternText kPatterns[] = {
    {"N", "", "s", "e es"},        {"K", "s", "s", "e es ss"},           {"X", "", "s", "e es s ss"},
    {"NN", "", "", "e|e ee"},      {"NK", "", "s", "e es|e ee"},         {"NX", "", "", "e|e ee s es"},
    {"KN", "s", "", "e|e ee se"},  {"KK", "s", "s", "e es ss|e ee se"},  {"KX", "s", "", "e|e ee se s es"},
    {"XN", "", "", "e|e ee|s se"}, {"XK", "", "s", "e es|e ee|s se"},    {"XX", "", "", "e|e ee s es|s se"},
    {"IN", "", "", "e s|e ee se"}, {"IK", "", "s", "e es s ss|e ee se"}, {"IX", "", "", "e s|e ee se s es"},
};

struct Pattern {
  bool pre_s_i = false, pre_s_r = false;  // these patterns only ever pre-share static keys
  std::vector<std::vector<Token>> messages;
  size_t psk_count = 0;
};

// Splits `s` at `sep`; calls f(piece) for each piece (empty ones included).
template <class F>
void split_at(std::string_view s, char sep, F f) {
  for (size_t at = 0;;) {
    const size_t end = s.find(sep, at);
    f(s.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    if (end == std::string_view::npos) return;
    at = end + 1;
  }
}

// "Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2b" -> token lists with psk placed as 9.2 says:
// psk0 first in the first message, pskN (N >= 1) last in message N.
bool parse_protocol(std::string_view name, Pattern& p, std::string& err) {
  constexpr std::string_view prefix = "Noise_", suffix = "_25519_ChaChaPoly_BLAKE2b";
  if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
      name.substr(name.size() - suffix.size()) != suffix) {
    err = "unsupported protocol (only Noise_*_25519_ChaChaPoly_BLAKE2b): " + std::string(name);
    return false;
  }
  const std::string_view pat = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  const size_t upper = std::min(pat.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), pat.size());
  const PatternText* base = nullptr;
  for (auto& t : kPatterns)
    if (pat.substr(0, upper) == t.name) base = &t;
  if (!base) return err = "unknown handshake pattern: " + std::string(pat), false;
  p.pre_s_i = *base->pre_i != 0;
  p.pre_s_r = *base->pre_r != 0;
  split_at(base->messages, '|', [&](std::string_view msg) {
    p.messages.emplace_back();
    split_at(msg, ' ', [&](std::string_view w) {
      static constexpr std::string_view names[] = {"e", "s", "ee", "es", "se", "ss"};  // Token's order
      for (size_t i = 0; i < std::size(names); ++i)
        if (w == names[i]) p.messages.back().push_back(static_cast<Token>(i));
    });
  });
  if (upper == pat.size()) return true;
  std::vector<bool> used(p.messages.size() + 1, false);
  bool ok = true;
  split_at(pat.substr(upper), '+', [&](std::string_view m) {
    size_t n = 0;
    bool good = m.size() >= 4 && m.size() <= 5 && m.substr(0, 3) == "psk";
    for (size_t i = 3; good && i < m.size(); ++i) {
      good = m[i] >= '0' && m[i] <= '9';
      n = n * 10 + static_cast<size_t>(m[i] - '0');
    }
    if (!good || n > p.messages.size() || used[n]) return void(ok = false);
    used[n] = true;
    if (n == 0)
      p.messages[0].insert(p.messages[0].begin(), Token::PSK);
    else
      p.messages[n - 1].push_back(Token::PSK);
    ++p.psk_count;
  });
  if (!ok) err = "unsupported or invalid pattern modifier in " + std::string(pat);
  return ok;
}

}  // namespace

// ---- HandshakeState (5.3) --------------------------------------------------------------
HandshakeState::~HandshakeState() { wipe_secrets(); }
HandshakeState::HandshakeState(HandshakeState&& o) noexcept { *this = std::move(o); }
HandshakeState& HandshakeState::operator=(HandshakeState&& o) noexcept {
  if (this != &o) {
    wipe_secrets();
    ss_ = std::move(o.ss_), s_ = o.s_, e_ = o.e_, rs_ = o.rs_, re_ = o.re_;
    psks_ = std::move(o.psks_), next_psk_ = o.next_psk_, messages_ = std::move(o.messages_), next_ = o.next_;
    initiator_ = o.initiator_, psk_mode_ = o.psk_mode_, initialized_ = o.initialized_, failed_ = o.failed_;
    o.wipe_secrets();
    o.initialized_ = false;
  }
  return *this;
}

void HandshakeState::wipe_secrets() {
  s_.reset();  // KeyPair's destructor wipes
  e_.reset();
  for (auto& k : psks_) sodium_memzero(k.data(), k.size());
  psks_.clear();
}

bool HandshakeState::fail(std::string& err, const char* why) {
  err = why;
  failed_ = true;
  wipe_secrets();
  ss_.wipe();
  rs_.reset();  // whatever was learned is not authenticated
  re_.reset();
  return false;
}

bool HandshakeState::complete() const { return initialized_ && !failed_ && next_ == messages_.size(); }

bool HandshakeState::my_turn() const {
  return initialized_ && !failed_ && next_ < messages_.size() && (next_ % 2 == 0) == initiator_;
}

bool HandshakeState::initialize(const HandshakeConfig& c, std::string& err) {
  *this = HandshakeState();
  if (!sodium_ready()) return err = "libsodium initialisation failed", false;
  Pattern p;
  if (!parse_protocol(c.protocol_name, p, err)) return false;
  // Which static keys the pattern uses on each side decides what the config must hold.
  bool local_s = c.initiator ? p.pre_s_i : p.pre_s_r;
  for (size_t i = 0; i < p.messages.size(); ++i)
    for (Token t : p.messages[i])
      local_s = local_s || (t == Token::S && (i % 2 == 0) == c.initiator) || t == Token::SS ||
                (t == Token::ES && !c.initiator) || (t == Token::SE && c.initiator);
  const bool remote_pre_s = c.initiator ? p.pre_s_r : p.pre_s_i;
  if (local_s && !c.s) return err = "pattern needs a local static key (s)", false;
  if (remote_pre_s && !c.rs) return err = "pattern needs the remote static key in advance (rs)", false;
  if (!remote_pre_s && c.rs)  // it would silently go unchecked
    return err = "pattern does not take the remote static key in advance; check remote_static() afterwards", false;
  if (c.psks.size() != p.psk_count) return err = "number of psks does not match the pattern's psk tokens", false;

  initiator_ = c.initiator;
  psk_mode_ = p.psk_count > 0;
  s_ = c.s, e_ = c.e, rs_ = c.rs, psks_ = c.psks;  // e_ is normally empty: the 'e' token generates it
  messages_ = std::move(p.messages);
  ss_.initialize(c.protocol_name);
  ss_.mix_hash(c.prologue);
  // Pre-messages, the initiator's first (7.1).
  if (p.pre_s_i) ss_.mix_hash(sv(c.initiator ? s_->pub : *rs_));
  if (p.pre_s_r) ss_.mix_hash(sv(c.initiator ? *rs_ : s_->pub));
  initialized_ = true;
  return true;
}

bool HandshakeState::mix_dh(Token t, std::string& err) {
  // es = DH(initiator's e, responder's s), se = DH(initiator's s, responder's e) (7.1).
  const std::optional<KeyPair>* local = &s_;
  const std::optional<Key32>* remote = &rs_;
  if (t == Token::EE || (t == Token::ES && initiator_) || (t == Token::SE && !initiator_)) local = &e_;
  if (t == Token::EE || (t == Token::ES && !initiator_) || (t == Token::SE && initiator_)) remote = &re_;
  if (!*local || !*remote) return fail(err, "handshake failed: key missing for DH");
  Secret<kDhLen> shared;
  // libsodium returns -1 for an all-zero result (a low-order remote point); rejecting it
  // keeps a secret the peer can force out of the key schedule.
  if (crypto_scalarmult(shared.data(), (*local)->priv.data(), (*remote)->data()) != 0 ||
      sodium_is_zero(shared.data(), shared.size()))
    return fail(err, "handshake failed: DH result is all zeros");
  ss_.mix_key(sv(shared));
  return true;
}

bool HandshakeState::live(std::string& err) const {
  if (!initialized_)
    err = "handshake not initialized";
  else if (failed_)
    err = "handshake failed";
  return initialized_ && !failed_;
}

bool HandshakeState::write_message(std::string_view payload, std::string& out, std::string& err) {
  if (!live(err)) return false;
  if (!my_turn()) return err = complete() ? "handshake already complete" : "not our turn to write", false;
  const auto& tokens = messages_[next_];
  // Size check before any state changes, so an oversized payload is a plain error.
  size_t size = payload.size();
  bool keyed = ss_.has_key();
  for (Token t : tokens) {
    if (t == Token::E)
      size += kDhLen, keyed = keyed || psk_mode_;
    else if (t == Token::S)
      size += kDhLen + (keyed ? kTagLen : 0);
    else
      keyed = true;
  }
  if (size + (keyed ? kTagLen : 0) > kMaxMessage) return err = "handshake message would exceed 65535 bytes", false;

  std::string msg;
  for (Token t : tokens) {
    if (t == Token::E) {
      if (!e_) e_ = KeyPair::generate();  // preset only by test vectors
      msg.append(sv(e_->pub));
      ss_.mix_hash(sv(e_->pub));
      if (psk_mode_) ss_.mix_key(sv(e_->pub));  // 9.2: with psks, e is also a key input
    } else if (t == Token::S) {
      if (!ss_.encrypt_and_hash(sv(s_->pub), msg)) return fail(err, "handshake failed: encrypt");
    } else if (t == Token::PSK) {
      ss_.mix_key_and_hash(sv(psks_[next_psk_++]));
    } else if (!mix_dh(t, err)) {
      return false;
    }
  }
  if (!ss_.encrypt_and_hash(payload, msg)) return fail(err, "handshake failed: encrypt");
  out.append(msg);
  if (++next_ == messages_.size()) wipe_secrets();  // e, s, psks are no longer needed
  return true;
}

bool HandshakeState::read_message(std::string_view message, std::string& payload, std::string& err) {
  if (!live(err)) return false;
  if (complete()) return fail(err, "handshake failed: already complete");
  if (my_turn()) return fail(err, "handshake failed: not our turn to read");
  if (message.size() > kMaxMessage) return fail(err, "handshake failed: message exceeds 65535 bytes");
  for (Token t : messages_[next_]) {
    if (t == Token::E) {
      if (message.size() < kDhLen) return fail(err, "handshake failed: message truncated");
      re_.emplace();
      std::memcpy(re_->data(), message.data(), kDhLen);
      ss_.mix_hash(message.substr(0, kDhLen));
      if (psk_mode_) ss_.mix_key(message.substr(0, kDhLen));
      message.remove_prefix(kDhLen);
    } else if (t == Token::S) {
      const size_t n = kDhLen + (ss_.has_key() ? kTagLen : 0);
      std::string pub;
      if (message.size() < n) return fail(err, "handshake failed: message truncated");
      if (!ss_.decrypt_and_hash(message.substr(0, n), pub))
        return fail(err, "handshake failed: cannot decrypt remote static key");
      rs_.emplace();
      std::memcpy(rs_->data(), pub.data(), kDhLen);
      message.remove_prefix(n);
    } else if (t == Token::PSK) {
      ss_.mix_key_and_hash(sv(psks_[next_psk_++]));
    } else if (!mix_dh(t, err)) {
      return false;
    }
  }
  std::string plain;  // payload stays unchanged unless the whole message is good
  if (!ss_.decrypt_and_hash(message, plain)) return fail(err, "handshake failed: cannot decrypt payload");
  payload.append(plain);
  if (++next_ == messages_.size()) wipe_secrets();
  return true;
}

void HandshakeState::split(CipherState& c1, CipherState& c2) {
  c1.wipe();
  c2.wipe();
  if (complete()) ss_.split(c1, c2);
}

std::string HandshakeState::handshake_hash() const { return initialized_ ? std::string(ss_.h()) : std::string(); }

}  // namespace jsd::noise
