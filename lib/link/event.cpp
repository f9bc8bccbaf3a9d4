#include "event.h"

#include <algorithm>
#include <cstring>

namespace jsd {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::call:
      return "call";
    case Kind::reply:
      return "reply";
    case Kind::notify:
      return "notify";
  }
  return "?";
}

namespace {

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
    uint32_t v;
    memcpy(&v, in.data() + pos, 4);
    pos += 4;
    return __builtin_bswap32(v);
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v;
    memcpy(&v, in.data() + pos, 8);
    pos += 8;
    return __builtin_bswap64(v);
  }
  std::string_view view(size_t n) {
    if (!need(n)) return {};
    std::string_view v = in.substr(pos, n);
    pos += n;
    return v;
  }
};

}  // namespace

// One resize and straight stores: this runs for every event on every hop.
void encode_view_into(std::string& o, const MsgView& m) {
  auto n8 = [](std::string_view x) { return std::min<size_t>(x.size(), 255); };
  size_t need = 1 + 8 + 8 + 1 + n8(m.peer) + 4 + m.text.size() + 1 + 8 + 1 + n8(m.from) + 1 + n8(m.to) + 1 +
                n8(m.object) + 4 + m.body.size() + 1;
  size_t at = o.size();
  o.resize(at + need);
  char* p = o.data() + at;
  auto u8 = [&](uint8_t v) { *p++ = static_cast<char>(v); };
  auto u32 = [&](uint32_t v) {
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
    p += 4;
  };
  auto u64 = [&](uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
    p += 8;
  };
  // (An empty view may have a null data(): memcpy must not see it.)
  auto s8 = [&](std::string_view x) {
    size_t n = n8(x);
    u8(static_cast<uint8_t>(n));
    if (n) memcpy(p, x.data(), n);
    p += n;
  };
  auto s32 = [&](std::string_view x) {
    u32(static_cast<uint32_t>(x.size()));
    if (!x.empty()) memcpy(p, x.data(), x.size());
    p += x.size();
  };
  u8(static_cast<uint8_t>(m.type));
  u64(m.seq);
  u64(m.instance);
  s8(m.peer);
  s32(m.text);
  u8(static_cast<uint8_t>(m.kind));
  u64(m.id);
  s8(m.from);
  s8(m.to);
  s8(m.object);
  s32(m.body);
  u8(m.more ? 1 : 0);
}

void encode_into(std::string& o, const Msg& m) {
  MsgView v;
  v.type = m.type;
  v.seq = m.seq;
  v.instance = m.instance;
  v.peer = m.peer;
  v.text = m.text;
  v.kind = m.ev.kind;
  v.id = m.ev.id;
  v.from = m.ev.from;
  v.to = m.ev.to;
  v.object = m.ev.object;
  v.body = m.ev.body;
  v.more = m.ev.more;
  encode_view_into(o, v);
}

std::string encode(const Msg& m) {
  std::string o;
  o.reserve(64 + m.text.size() + m.ev.body.size());
  encode_into(o, m);
  return o;
}

bool decode_view(std::string_view in, MsgView& m, std::string& err) {
  Reader r{in};
  uint8_t t = r.u8();
  m.seq = r.u64();
  m.instance = r.u64();
  m.peer = r.view(r.u8());
  m.text = r.view(r.u32());
  uint8_t k = r.u8();
  m.id = r.u64();
  m.from = r.view(r.u8());
  m.to = r.view(r.u8());
  m.object = r.view(r.u8());
  m.body = r.view(r.u32());
  uint8_t flags = r.u8();
  if (!r.ok) {
    err = "truncated message (" + std::to_string(in.size()) + " bytes)";
    return false;
  }
  if (r.pos != in.size()) {
    err = "trailing bytes after message";
    return false;
  }
  bool known_type = (t >= 1 && t <= 6) || (t >= 10 && t <= 12) || (t >= 20 && t <= 23);
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
  m.more = flags & 1;
  m.type = static_cast<MsgType>(t);
  m.kind = static_cast<Kind>(k);
  return true;
}

bool decode(std::string_view in, Msg& m, std::string& err) {
  MsgView v;
  if (!decode_view(in, v, err)) return false;
  m.type = v.type;
  m.seq = v.seq;
  m.instance = v.instance;
  m.peer.assign(v.peer);
  m.text.assign(v.text);
  m.ev.kind = v.kind;
  m.ev.id = v.id;
  m.ev.from.assign(v.from);
  m.ev.to.assign(v.to);
  m.ev.object.assign(v.object);
  m.ev.body.assign(v.body);
  m.ev.more = v.more;
  return true;
}

}  // namespace jsd
