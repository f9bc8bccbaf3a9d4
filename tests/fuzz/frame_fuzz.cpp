// libFuzzer harness: the frame decoder (lib/base/frame.h), as a stream
// reader sees it. Input: byte 0 picks max_frame (1 << (byte % 21)), byte 1
// the chunk size the bytes arrive in; the rest is the stream. Checks that
// every frame popped is within max_frame, that the frames re-encode to the
// bytes consumed, and that next_frame() splits the same bytes the same way.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "frame.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t max_frame = size_t(1) << (data[0] % 21);
  size_t chunk = data[1] ? data[1] : 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  jsd::FrameDecoder dec(max_frame);
  std::string reencoded;
  size_t frames = 0;
  bool too_large = false;
  for (size_t off = 0; off < stream.size() && !too_large; off += chunk) {
    auto piece = stream.substr(off, chunk);
    dec.feed(piece.data(), piece.size());
    std::string_view payload;
    for (;;) {
      auto r = dec.next(payload);
      if (r == jsd::FrameDecoder::Result::need_more) break;
      if (r == jsd::FrameDecoder::Result::too_large) {
        FUZZ_CHECK(dec.announced() > max_frame);
        too_large = true;
        break;
      }
      FUZZ_CHECK(payload.size() <= max_frame);
      jsd::append_frame(reencoded, payload);
      ++frames;
    }
  }
  // What was popped is exactly a prefix of the stream.
  FUZZ_CHECK(stream.substr(0, reencoded.size()) == reencoded);
  if (!too_large) FUZZ_CHECK(reencoded.size() + dec.buffered() == stream.size());

  // The batch splitter agrees on every whole frame within the limit.
  std::string_view in = stream, payload;
  std::string again;
  bool err = false;
  size_t n = 0;
  while (n < frames && jsd::next_frame(in, payload, err)) {
    jsd::append_frame(again, payload);
    ++n;
  }
  FUZZ_CHECK(n == frames && again == reencoded);
  return 0;
}
