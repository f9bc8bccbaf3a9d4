// Frame protection on a link: ChaCha20-Poly1305 (IETF) with an implicit
// 64-bit counter as nonce, exactly Noise's CipherState ENCRYPT/DECRYPT with an
// empty ad, keyed by the transport keys of the Noise handshake (handshake.h).
// A forged, altered, replayed, dropped or reordered frame fails to open and
// the link is closed. Unlike a Noise transport message a jsd frame may be
// longer than 65535 bytes (a batch of events, up to max_frame): the AEAD is
// the same, only the length limit differs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace jsd {

constexpr size_t kKeyBytes = 32;
constexpr size_t kMacBytes = 16;  // ChaCha20-Poly1305 tag
using Key = std::array<unsigned char, kKeyBytes>;

bool crypto_init(std::string& err);
void wipe(Key& k);

// The transport keys of one link, from the handshake's Split(), and the
// nonce each direction goes on from (the XX responder has used one).
struct SessionKeys {
  Key c2s{};  // initiator (jsd-client) -> responder (queue-server)
  Key s2c{};
  uint64_t c2s_n = 0, s2c_n = 0;
  void wipe();
};

// When a sender replaces its key: after_ms (rekey_after_s) or after_frames
// (rekey_after_frames; by default 2^20, far below the 2^60 a key may
// protect), whichever comes first.
constexpr uint64_t kRekeyFrames = uint64_t(1) << 20;
struct RekeyLimits {
  uint64_t after_ms = 120000;
  uint64_t after_frames = kRekeyFrames;
};

class SecureChannel {
 public:
  SecureChannel() = default;
  SecureChannel(const Key& tx, uint64_t tx_n, const Key& rx, uint64_t rx_n)
      : tx_(tx), rx_(rx), tx_n_(tx_n), rx_n_(rx_n), ready_(true) {}
  ~SecureChannel();
  bool ready() const { return ready_; }
  // Appends the ciphertext (plain.size() + kMacBytes bytes) to out.
  void seal(std::string_view plain, std::string& out);
  // Opens the next frame; false if it is not exactly the next frame the
  // peer sealed with this key (tampered, replayed, reordered, truncated).
  bool open(std::string_view cipher, std::string& plain);
  // Noise Rekey() of one direction: the old key is gone for good, so a key
  // taken from this process later does not open what was sent before.
  void rekey_tx(uint64_t now_ms = 0);
  void rekey_rx();
  // True when the next sealed frame should carry a rekey message (and
  // rekey_tx() follow it). now_ms: a monotonic clock.
  bool rekey_due(uint64_t now_ms, const RekeyLimits& l) const {
    return tx_n_ - tx_rekeyed_n_ >= l.after_frames || now_ms - tx_rekeyed_ms_ >= l.after_ms;
  }
  void start_clock(uint64_t now_ms) { tx_rekeyed_ms_ = now_ms; }
  uint64_t rekeys() const { return rekeys_; }
  uint64_t sent() const { return tx_n_; }
  uint64_t received() const { return rx_n_; }

 private:
  Key tx_{}, rx_{};
  uint64_t tx_n_ = 0, rx_n_ = 0;
  uint64_t tx_rekeyed_n_ = 0, tx_rekeyed_ms_ = 0, rekeys_ = 0;
  bool ready_ = false;
};

std::string to_hex(const unsigned char* p, size_t n);
bool from_hex(std::string_view hex, unsigned char* out, size_t n);

}  // namespace jsd
