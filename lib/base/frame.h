// Framing: every message on every jsd stream (TCP link, listener port,
// supervisor pipe, control socket) is a 4-byte big-endian length followed by
// that many bytes. The length has a hard limit; a stream that announces a
// bigger frame is broken and gets closed, nothing else is affected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace jsd {

constexpr size_t kFrameHeader = 4;
constexpr size_t kDefaultMaxFrame = 1 << 20;  // 1 MiB

// Appends one frame (header + payload) to out.
void append_frame(std::string& out, std::string_view payload);
std::string make_frame(std::string_view payload);

// Splits a buffer of frames (e.g. the messages batched into one sealed link
// frame): on true, payload is the next one and in is advanced past it.
// False at the end, or with err set if the rest is not a whole frame.
bool next_frame(std::string_view& in, std::string_view& payload, bool& err);

// Incremental decoder: feed bytes as they arrive, pop complete frames.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}
  void feed(const char* data, size_t len);
  enum class Result { frame, need_more, too_large };
  // On Result::frame, payload views into the decoder's buffer and is valid
  // until the next call to feed() or next().
  Result next(std::string_view& payload);
  size_t announced() const { return announced_; }
  size_t max_frame() const { return max_frame_; }
  // A stream whose peer proved itself may send bigger frames from here on.
  void set_max_frame(size_t max_frame) { max_frame_ = max_frame; }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t max_frame_;
  size_t announced_ = 0;
};

}  // namespace jsd
