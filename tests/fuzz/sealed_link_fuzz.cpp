// libFuzzer harness: the sealed link's open (lib/link/sealed_link.h), the
// first code that reads a frame after the handshake. Both ends hold the same
// fixed transport keys, so fuzzed plaintext reaches the batch parser behind
// the AEAD. The input is split into up to 16 frames at FF FE (fuzz_util.h);
// each part's first byte says what becomes of the rest:
//   0: sealed by a real sender: a batch of length-prefixed messages, as
//      SealedLink::flush makes (a rekey message in it rekeys the sender);
//   1: sent as it is (random bytes must fail the AEAD);
//   2: sealed by the real sender, then one byte (part[1] picks it) flipped;
//   3: the previous frame sent again (a replay).
// Checks: a sealed well-formed batch opens into exactly its messages without
// the rekey ones, and after a rekey the next frame still opens; a malformed
// batch, a raw, altered or replayed frame is refused (the link then ends, so
// the harness stops there). Every message opened goes through decode_link
// as the queue server does.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.h"
#include "frame.h"
#include "fuzz_util.h"
#include "link_msg.h"
#include "sealed_link.h"

namespace {

jsd::Key key(unsigned char salt) {
  jsd::Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(salt * 31 + i);
  return k;
}

// The messages of a batch, or false if it is not a whole number of frames.
bool split_batch(std::string_view batch, std::vector<std::string_view>& msgs, bool& rekey) {
  std::string_view one;
  bool bad = false;
  rekey = false;
  while (jsd::next_frame(batch, one, bad)) {
    if (one.size() == 1 && static_cast<uint8_t>(one[0]) == static_cast<uint8_t>(jsd::LinkType::rekey))
      rekey = true;
    else
      msgs.push_back(one);
  }
  return !bad;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool ready = [] {
    std::string err;
    return jsd::crypto_init(err);
  }();
  FUZZ_CHECK(ready);
  const jsd::Key c2s = key(1), s2c = key(2);
  // The sender is the client's channel; the receiver is the server's
  // SealedLink (it never sends here, so no stream is attached).
  jsd::SecureChannel sender(c2s, 0, s2c, 0);
  jsd::SealedLink receiver(s2c, 0, c2s, 0, jsd::RekeyLimits{1000000}, 65536, "fuzz link");

  auto parts = jsd_fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), 16);
  std::string last, frame;
  std::vector<std::string_view> msgs;
  std::string err;
  for (auto part : parts) {
    if (part.empty()) continue;
    uint8_t mode = static_cast<uint8_t>(part[0]) % 4;
    std::string_view body = part.substr(1);
    frame.clear();
    if (mode == 1) {
      frame.assign(body);
    } else if (mode == 3) {
      if (last.empty()) continue;
      frame = last;
    } else {
      sender.seal(body, frame);
      if (mode == 2) {
        size_t at = body.empty() ? 0 : static_cast<uint8_t>(body[0]) % frame.size();
        frame[at] = static_cast<char>(frame[at] ^ 0x5a);
      }
    }
    bool opened = receiver.open(frame, msgs, err);
    if (mode != 0) {
      // Only a raw frame that happens to be the sealed next one could open,
      // and 16 random bytes of tag make that impossible in practice.
      FUZZ_CHECK(!opened || mode == 1);
      if (!opened) FUZZ_CHECK(!err.empty());
      return 0;
    }
    std::vector<std::string_view> want;
    bool rekey = false;
    bool well_formed = split_batch(body, want, rekey);
    FUZZ_CHECK(opened == well_formed);
    if (!opened) return 0;  // a malformed batch ends the link
    FUZZ_CHECK(msgs == want);
    for (auto m : msgs) {
      jsd::LinkMsg lm;
      std::string why;
      if (jsd::decode_link(m, lm, why) && lm.type != jsd::LinkType::data) FUZZ_CHECK(jsd::encode_link(lm) == m);
    }
    // As SealedLink::flush: the frame that announced it was the last one
    // under the old key.
    if (rekey) sender.rekey_tx();
    last = frame;
  }
  return 0;
}
