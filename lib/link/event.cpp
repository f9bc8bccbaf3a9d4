#include "event.h"

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

EventView view_of(const Event& e) { return {e.kind, e.id, e.from, e.to, e.object, e.body, e.more}; }

Event to_event(const EventView& v) {
  return {v.kind, v.id, std::string(v.from), std::string(v.to), std::string(v.object), std::string(v.body), v.more};
}

size_t event_size(const EventView& e) {
  return 1 + 8 + WireWriter::str8_size(e.from) + WireWriter::str8_size(e.to) + WireWriter::str8_size(e.object) +
         WireWriter::str32_size(e.body) + 1;
}

void put_event(WireWriter& w, const EventView& e) {
  w.u8(static_cast<uint8_t>(e.kind));
  w.u64(e.id);
  w.str8(e.from);
  w.str8(e.to);
  w.str8(e.object);
  w.str32(e.body);
  w.u8(e.more ? 1 : 0);
}

bool get_event(WireReader& r, EventView& e, std::string& err) {
  uint8_t k = r.u8();
  e.id = r.u64();
  e.from = r.str8();
  e.to = r.str8();
  e.object = r.str8();
  e.body = r.str32();
  uint8_t flags = r.u8();
  if (!r.ok()) {
    err = "truncated event";
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
  e.kind = static_cast<Kind>(k);
  e.more = flags & 1;
  return true;
}

// One resize and straight stores: this runs for every event on every hop.
void encode_data_into(std::string& out, uint64_t seq, const EventView& e) {
  WireWriter w(out, 1 + 8 + event_size(e));
  w.u8(kDataType);
  w.u64(seq);
  put_event(w, e);
}

std::string encode_data(uint64_t seq, const Event& e) {
  std::string out;
  encode_data_into(out, seq, view_of(e));
  return out;
}

bool decode_data(std::string_view in, uint64_t& seq, EventView& e, std::string& err) {
  if (!peek_data_seq(in, seq)) {
    err = in.empty() || static_cast<uint8_t>(in[0]) == kDataType ? "truncated data message" : "not a data message";
    return false;
  }
  WireReader r(in.substr(9));
  if (!get_event(r, e, err)) return false;
  if (!r.done()) {
    err = "trailing bytes after data message";
    return false;
  }
  return true;
}

bool peek_data_seq(std::string_view in, uint64_t& seq) {
  WireReader r(in);
  if (r.u8() != kDataType) return false;
  seq = r.u64();
  return r.ok();
}

}  // namespace jsd
