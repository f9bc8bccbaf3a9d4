#include "frame.h"

namespace jsd {

void append_frame(std::string& out, std::string_view payload) {
  uint32_t n = static_cast<uint32_t>(payload.size());
  char h[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(h, 4);
  out.append(payload);
}

std::string make_frame(std::string_view payload) {
  std::string s;
  s.reserve(payload.size() + kFrameHeader);
  append_frame(s, payload);
  return s;
}

bool next_frame(std::string_view& in, std::string_view& payload, bool& err) {
  err = false;
  if (in.empty()) return false;
  if (in.size() < kFrameHeader) {
    err = true;
    return false;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | size_t(p[3]);
  if (in.size() - kFrameHeader < n) {
    err = true;
    return false;
  }
  payload = in.substr(kFrameHeader, n);
  in.remove_prefix(kFrameHeader + n);
  return true;
}

void FrameDecoder::feed(const char* data, size_t len) {
  // Compact lazily so a stream of small frames does not move memory on
  // every read.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 65536)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, len);
}

FrameDecoder::Result FrameDecoder::next(std::string_view& payload) {
  size_t avail = buf_.size() - pos_;
  if (avail < kFrameHeader) return Result::need_more;
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  size_t n = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | size_t(p[3]);
  if (n > max_frame_) {
    announced_ = n;
    return Result::too_large;
  }
  if (avail < kFrameHeader + n) return Result::need_more;
  payload = std::string_view(buf_.data() + pos_ + kFrameHeader, n);
  pos_ += kFrameHeader + n;
  return Result::frame;
}

}  // namespace jsd
