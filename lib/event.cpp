#include "event.h"

#include <cstring>

namespace jsd {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::call: return "call";
    case Kind::reply: return "reply";
    case Kind::notify: return "notify";
  }
  return "?";
}

namespace {

void put_u8(std::string& o, uint8_t v) { o.push_back(static_cast<char>(v)); }
void put_u32(std::string& o, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * (3 - i)));
  o.append(b, 4);
}
void put_u64(std::string& o, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * (7 - i)));
  o.append(b, 8);
}
void put_str8(std::string& o, const std::string& s) {
  put_u8(o, static_cast<uint8_t>(s.size() > 255 ? 255 : s.size()));
  o.append(s.data(), s.size() > 255 ? 255 : s.size());
}
void put_str32(std::string& o, const std::string& s) {
  put_u32(o, static_cast<uint32_t>(s.size()));
  o.append(s);
}

struct Reader {
  std::string_view in;
  size_t pos = 0;
  bool ok = true;
  bool need(size_t n) {
    if (!ok || in.size() - pos < n) ok = false;
    return ok;
  }
  uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<uint8_t>(in[pos++]);
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[pos++]);
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[pos++]);
    return v;
  }
  void str(std::string& s, size_t n) {
    if (!need(n)) return;
    s.assign(in.data() + pos, n);
    pos += n;
  }
};

}  // namespace

void encode_into(std::string& o, const Msg& m) {
  put_u8(o, static_cast<uint8_t>(m.type));
  put_u64(o, m.seq);
  put_u64(o, m.instance);
  put_str8(o, m.peer);
  put_str32(o, m.text);
  put_u8(o, static_cast<uint8_t>(m.ev.kind));
  put_u64(o, m.ev.id);
  put_str8(o, m.ev.from);
  put_str8(o, m.ev.to);
  put_str8(o, m.ev.object);
  put_str32(o, m.ev.body);
  put_u8(o, m.ev.more ? 1 : 0);
}

std::string encode(const Msg& m) {
  std::string o;
  o.reserve(64 + m.text.size() + m.ev.body.size());
  encode_into(o, m);
  return o;
}

bool decode(std::string_view in, Msg& m, std::string& err) {
  Reader r{in};
  uint8_t t = r.u8();
  m.seq = r.u64();
  m.instance = r.u64();
  r.str(m.peer, r.u8());
  r.str(m.text, r.u32());
  uint8_t k = r.u8();
  m.ev.id = r.u64();
  r.str(m.ev.from, r.u8());
  r.str(m.ev.to, r.u8());
  r.str(m.ev.object, r.u8());
  r.str(m.ev.body, r.u32());
  uint8_t flags = r.u8();
  if (!r.ok) {
    err = "truncated message (" + std::to_string(in.size()) + " bytes)";
    return false;
  }
  if (r.pos != in.size()) {
    err = "trailing bytes after message";
    return false;
  }
  bool known_type = (t >= 1 && t <= 5) || (t >= 10 && t <= 12) || (t >= 20 && t <= 23);
  if (!known_type) {
    err = "unknown message type " + std::to_string(t);
    return false;
  }
  if (k < 1 || k > 3) {
    err = "unknown event kind " + std::to_string(k);
    return false;
  }
  if (flags > 1) {
    err = "unknown event flags " + std::to_string(flags);
    return false;
  }
  m.ev.more = flags & 1;
  m.type = static_cast<MsgType>(t);
  m.ev.kind = static_cast<Kind>(k);
  return true;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (s[0] == '-' || s[0] == '.') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace jsd
