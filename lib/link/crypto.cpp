#include "crypto.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jsd {

bool crypto_init(std::string& err) {
  if (sodium_init() < 0) {
    err = "libsodium failed to initialise";
    return false;
  }
  return true;
}

void wipe(Key& k) { sodium_memzero(k.data(), k.size()); }

std::string to_hex(const unsigned char* p, size_t n) {
  std::string s(n * 2 + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), p, n);
  s.resize(n * 2);
  return s;
}

bool from_hex(std::string_view hex, unsigned char* out, size_t n) {
  size_t len = 0;
  const char* end = nullptr;
  if (hex.size() != n * 2) return false;
  if (sodium_hex2bin(out, n, hex.data(), hex.size(), nullptr, &len, &end) != 0) return false;
  return len == n && end == hex.data() + hex.size();
}

void SessionKeys::wipe() {
  sodium_memzero(c2s.data(), c2s.size());
  sodium_memzero(s2c.data(), s2c.size());
}

SecureChannel::~SecureChannel() {
  sodium_memzero(tx_.data(), tx_.size());
  sodium_memzero(rx_.data(), rx_.size());
}

namespace {
void counter_nonce(unsigned char n[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t c) {
  memset(n, 0, crypto_aead_chacha20poly1305_IETF_NPUBBYTES);
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<unsigned char>(c >> (8 * i));
}
}  // namespace

void SecureChannel::seal(std::string_view plain, std::string& out) {
  unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  counter_nonce(nonce, tx_n_++);
  size_t at = out.size();
  out.resize(at + plain.size() + kMacBytes);
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data() + at), &clen,
                                            reinterpret_cast<const unsigned char*>(plain.data()), plain.size(), nullptr,
                                            0, nullptr, nonce, tx_.data());
}

bool SecureChannel::open(std::string_view cipher, std::string& plain) {
  if (cipher.size() < kMacBytes) return false;
  unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  counter_nonce(nonce, rx_n_);
  plain.resize(cipher.size() - kMacBytes);
  unsigned long long plen = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr,
                                                reinterpret_cast<const unsigned char*>(cipher.data()), cipher.size(),
                                                nullptr, 0, nonce, rx_.data()) != 0)
    return false;
  ++rx_n_;
  return true;
}

namespace {
// Spec 11.3: k = the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zeros).
void rekey(Key& k) {
  unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  counter_nonce(nonce, ~uint64_t(0));
  unsigned char zeros[32] = {0}, out[32 + kMacBytes];
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, zeros, sizeof zeros, nullptr, 0, nullptr, nonce, k.data());
  memcpy(k.data(), out, 32);
  sodium_memzero(out, sizeof out);
}
}  // namespace

void SecureChannel::rekey_tx(uint64_t now_ms) {
  rekey(tx_);
  tx_rekeyed_n_ = tx_n_;
  tx_rekeyed_ms_ = now_ms;
  ++rekeys_;
}
void SecureChannel::rekey_rx() { rekey(rx_); }

}  // namespace jsd
