// Big-endian fields of jsd's binary messages: a writer that stores into
// room reserved once (encoders size a message before writing it, so each
// message costs one resize), and a reader that never reads past its input
// and never throws: any shortfall only clears ok().
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace jsd {

class WireWriter {
 public:
  // Reserves n more bytes at the end of out; writes go there.
  WireWriter(std::string& out, size_t n) {
    size_t at = out.size();
    out.resize(at + n);
    p_ = out.data() + at;
  }
  void u8(uint8_t v) { *p_++ = static_cast<char>(v); }
  void u64(uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p_, &v, 8);
    p_ += 8;
  }
  void u32(uint32_t v) {
    v = __builtin_bswap32(v);
    memcpy(p_, &v, 4);
    p_ += 4;
  }
  void bytes(std::string_view x) {
    // (An empty view may have a null data(): memcpy must not see it.)
    if (!x.empty()) memcpy(p_, x.data(), x.size());
    p_ += x.size();
  }
  // A string with a one-byte length (names: at most 255 bytes, the rest cut).
  void str8(std::string_view x) {
    x = x.substr(0, 255);
    u8(static_cast<uint8_t>(x.size()));
    bytes(x);
  }
  // A string with a four-byte length (bodies).
  void str32(std::string_view x) {
    u32(static_cast<uint32_t>(x.size()));
    bytes(x);
  }
  static size_t str8_size(std::string_view x) { return 1 + (x.size() < 255 ? x.size() : 255); }
  static size_t str32_size(std::string_view x) { return 4 + x.size(); }

 private:
  char* p_;
};

class WireReader {
 public:
  explicit WireReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  // Everything read, nothing left over.
  bool done() const { return ok_ && pos_ == in_.size(); }
  size_t pos() const { return pos_; }
  size_t left() const { return in_.size() - pos_; }
  uint8_t u8() { return need(1) ? static_cast<uint8_t>(in_[pos_++]) : 0; }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v;
    memcpy(&v, in_.data() + pos_, 4);
    pos_ += 4;
    return __builtin_bswap32(v);
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v;
    memcpy(&v, in_.data() + pos_, 8);
    pos_ += 8;
    return __builtin_bswap64(v);
  }
  std::string_view bytes(size_t n) {
    if (!need(n)) return {};
    std::string_view v = in_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  std::string_view str8() { return bytes(u8()); }
  std::string_view str32() { return bytes(u32()); }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace jsd
