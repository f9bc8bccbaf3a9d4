#include "link_msg.h"

namespace jsd {

std::string encode_link(const LinkMsg& m) {
  std::string out;
  switch (m.type) {
    case LinkType::hello: {
      WireWriter w(out, 1 + WireWriter::str8_size(m.node) + 8);
      w.u8(static_cast<uint8_t>(m.type));
      w.str8(m.node);
      w.u64(m.instance);
      break;
    }
    case LinkType::ack:
    case LinkType::data: {  // (a data message without its event: tests only)
      WireWriter w(out, 9);
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.seq);
      break;
    }
    case LinkType::heartbeat:
    case LinkType::heartbeat_ack:
    case LinkType::rekey:
    case LinkType::bye: {
      WireWriter w(out, 1);
      w.u8(static_cast<uint8_t>(m.type));
      break;
    }
  }
  return out;
}

bool decode_link(std::string_view in, LinkMsg& m, std::string& err) {
  WireReader r(in);
  uint8_t t = r.u8();
  switch (t) {
    case static_cast<uint8_t>(LinkType::data):
      m.type = LinkType::data;
      if (in.size() < 9 || !peek_data_seq(in, m.seq)) {
        err = "truncated data message";
        return false;
      }
      return true;
    case static_cast<uint8_t>(LinkType::hello):
      m.type = LinkType::hello;
      m.node.assign(r.str8());
      m.instance = r.u64();
      break;
    case static_cast<uint8_t>(LinkType::ack):
      m.type = LinkType::ack;
      m.seq = r.u64();
      break;
    case static_cast<uint8_t>(LinkType::heartbeat):
    case static_cast<uint8_t>(LinkType::heartbeat_ack):
    case static_cast<uint8_t>(LinkType::rekey):
    case static_cast<uint8_t>(LinkType::bye):
      m.type = static_cast<LinkType>(t);
      break;
    default:
      err = in.empty() ? "empty link message" : "unknown link message type " + std::to_string(t);
      return false;
  }
  if (!r.ok()) {
    err = "truncated link message (" + std::to_string(in.size()) + " bytes)";
    return false;
  }
  if (!r.done()) {
    err = "trailing bytes after link message";
    return false;
  }
  return true;
}

}  // namespace jsd
