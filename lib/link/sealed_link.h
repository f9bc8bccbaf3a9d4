// The transport of a link once the handshake has made its keys, for both
// ends (jsd-client and jsd-queue-server): messages batched into sealed
// frames (one AEAD operation and one frame for all that is ready at once),
// and each direction's key replaced (Noise Rekey()) every rekey_after_ms
// and rekey_after_frames frames, announced by the last message under the old key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.h"

namespace jsd {

class Stream;

class SealedLink {
 public:
  SealedLink(const Key& tx, uint64_t tx_n, const Key& rx, uint64_t rx_n, RekeyLimits rekey, size_t max_batch,
             std::string name);
  // Where sealed frames go (null: nowhere yet, or no more).
  void attach(Stream* out) { out_ = out; }
  // Adds a message to the batch; a batch that would grow past max_batch is
  // sent first.
  void queue(std::string_view msg);
  // Seals and sends what is batched.
  void flush();
  void send(std::string_view msg) {
    queue(msg);
    flush();
  }
  // Opens one frame into its messages (views valid until the next open);
  // a rekey message is taken here. False with err: the frame failed
  // authentication (forged, altered, replayed or reordered) or is malformed.
  bool open(std::string_view frame, std::vector<std::string_view>& msgs, std::string& err);

 private:
  SecureChannel chan_;
  RekeyLimits rekey_;
  size_t max_batch_;
  std::string name_;  // "link to beta", for the log
  Stream* out_ = nullptr;
  std::string batch_, sealed_, plain_;
};

}  // namespace jsd
