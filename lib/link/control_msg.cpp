#include "control_msg.h"

namespace jsd {

std::string encode_control(const ControlMsg& m) {
  std::string out;
  EventView ev = view_of(m.ev);
  switch (m.type) {
    case ControlType::send: {
      WireWriter w(out, 2 + event_size(ev));
      w.u8(static_cast<uint8_t>(m.type));
      w.u8(m.durable ? 1 : 0);
      put_event(w, ev);
      break;
    }
    case ControlType::reply: {
      WireWriter w(out, 1 + event_size(ev));
      w.u8(static_cast<uint8_t>(m.type));
      put_event(w, ev);
      break;
    }
    case ControlType::status:
    case ControlType::metrics: {
      WireWriter w(out, 1);
      w.u8(static_cast<uint8_t>(m.type));
      break;
    }
    case ControlType::status_reply:
    case ControlType::metrics_text: {
      WireWriter w(out, 1 + WireWriter::str32_size(m.status));
      w.u8(static_cast<uint8_t>(m.type));
      w.str32(m.status);
      break;
    }
    case ControlType::error: {
      WireWriter w(out, 1 + 8 + WireWriter::str32_size(m.why));
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.id);
      w.str32(m.why);
      break;
    }
    case ControlType::withdraw: {
      WireWriter w(out, 1 + 8);
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.id);
      break;
    }
    case ControlType::withdrawn: {
      WireWriter w(out, 1 + 8 + 1);
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.id);
      w.u8(static_cast<uint8_t>(m.verdict));
      break;
    }
    case ControlType::notice: {
      WireWriter w(out, 1 + 8 + WireWriter::str8_size(m.node) + 1 + WireWriter::str32_size(m.detail));
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.id);
      w.str8(m.node);
      w.u8(static_cast<uint8_t>(m.state));
      w.str32(m.detail);
      break;
    }
  }
  return out;
}

namespace {

bool finish(const WireReader& r, std::string_view in, std::string& err) {
  if (!r.ok()) {
    err = "truncated control message (" + std::to_string(in.size()) + " bytes)";
    return false;
  }
  if (!r.done()) {
    err = "trailing bytes after control message";
    return false;
  }
  return true;
}

}  // namespace

bool decode_send(std::string_view in, bool& durable, EventView& ev, std::string& err) {
  WireReader r(in);
  if (r.u8() != static_cast<uint8_t>(ControlType::send)) {
    err = "not a send message";
    return false;
  }
  uint8_t flags = r.u8();
  if (r.ok() && flags > 1) {
    err = "unknown send flags " + std::to_string(flags);
    return false;
  }
  durable = flags & 1;
  if (!get_event(r, ev, err)) return false;
  return finish(r, in, err);
}

bool decode_control(std::string_view in, ControlMsg& m, std::string& err) {
  WireReader r(in);
  uint8_t t = r.u8();
  EventView ev;
  switch (t) {
    case static_cast<uint8_t>(ControlType::send):
      m.type = ControlType::send;
      if (!decode_send(in, m.durable, ev, err)) return false;
      m.ev = to_event(ev);
      return true;
    case static_cast<uint8_t>(ControlType::reply):
      m.type = ControlType::reply;
      if (!get_event(r, ev, err)) return false;
      m.ev = to_event(ev);
      break;
    case static_cast<uint8_t>(ControlType::status):
      m.type = ControlType::status;
      break;
    case static_cast<uint8_t>(ControlType::status_reply):
      m.type = ControlType::status_reply;
      m.status.assign(r.str32());
      break;
    case static_cast<uint8_t>(ControlType::metrics):
      m.type = ControlType::metrics;
      break;
    case static_cast<uint8_t>(ControlType::metrics_text):
      m.type = ControlType::metrics_text;
      m.status.assign(r.str32());
      break;
    case static_cast<uint8_t>(ControlType::error):
      m.type = ControlType::error;
      m.id = r.u64();
      m.why.assign(r.str32());
      break;
    case static_cast<uint8_t>(ControlType::withdraw):
      m.type = ControlType::withdraw;
      m.id = r.u64();
      break;
    case static_cast<uint8_t>(ControlType::withdrawn): {
      m.type = ControlType::withdrawn;
      m.id = r.u64();
      uint8_t v = r.u8();
      if (r.ok() && v != static_cast<uint8_t>(WithdrawVerdict::not_sent) &&
          v != static_cast<uint8_t>(WithdrawVerdict::unknown)) {
        err = "unknown withdraw verdict " + std::to_string(v);
        return false;
      }
      m.verdict = static_cast<WithdrawVerdict>(v);
      break;
    }
    case static_cast<uint8_t>(ControlType::notice): {
      m.type = ControlType::notice;
      m.id = r.u64();
      m.node.assign(r.str8());
      uint8_t s = r.u8();
      m.detail.assign(r.str32());
      if (r.ok() && !link_state_from(s, m.state)) {
        err = "unknown link state " + std::to_string(s);
        return false;
      }
      break;
    }
    default:
      err = in.empty() ? "empty control message" : "unknown control message type " + std::to_string(t);
      return false;
  }
  return finish(r, in, err);
}

}  // namespace jsd
