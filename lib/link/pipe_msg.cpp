#include "pipe_msg.h"

#include <cstring>

namespace jsd {

std::string encode_pipe(const PipeMsg& m) {
  std::string out;
  switch (m.type) {
    case PipeType::ack:
    case PipeType::withdraw:
    case PipeType::data: {  // (a data message without its event: tests only)
      WireWriter w(out, 9);
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.seq);
      break;
    }
    case PipeType::state: {
      WireWriter w(out, 1 + 1 + WireWriter::str8_size(m.peer) + 8 + WireWriter::str32_size(m.detail));
      w.u8(static_cast<uint8_t>(m.type));
      w.u8(static_cast<uint8_t>(m.state));
      w.str8(m.peer);
      w.u64(m.instance);
      w.str32(m.detail);
      break;
    }
    case PipeType::too_big: {
      WireWriter w(out, 9 + WireWriter::str32_size(m.detail));
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.seq);
      w.str32(m.detail);
      break;
    }
    case PipeType::withdrawn: {
      WireWriter w(out, 10);
      w.u8(static_cast<uint8_t>(m.type));
      w.u64(m.seq);
      w.u8(m.dropped ? 1 : 0);
      break;
    }
    case PipeType::retry:
    case PipeType::alive: {
      WireWriter w(out, 1);
      w.u8(static_cast<uint8_t>(m.type));
      break;
    }
    case PipeType::session:
      break;  // encode_session
  }
  return out;
}

bool decode_pipe(std::string_view in, PipeMsg& m, std::string& err) {
  WireReader r(in);
  uint8_t t = r.u8();
  switch (t) {
    case static_cast<uint8_t>(PipeType::data):
      m.type = PipeType::data;
      if (!peek_data_seq(in, m.seq)) {
        err = "truncated data message";
        return false;
      }
      return true;
    case static_cast<uint8_t>(PipeType::ack):
      m.type = PipeType::ack;
      m.seq = r.u64();
      break;
    case static_cast<uint8_t>(PipeType::state): {
      m.type = PipeType::state;
      uint8_t s = r.u8();
      m.peer.assign(r.str8());
      m.instance = r.u64();
      m.detail.assign(r.str32());
      if (r.ok() && !link_state_from(s, m.state)) {
        err = "unknown link state " + std::to_string(s);
        return false;
      }
      break;
    }
    case static_cast<uint8_t>(PipeType::retry):
      m.type = PipeType::retry;
      break;
    case static_cast<uint8_t>(PipeType::alive):
      m.type = PipeType::alive;
      break;
    case static_cast<uint8_t>(PipeType::withdraw):
      m.type = PipeType::withdraw;
      m.seq = r.u64();
      break;
    case static_cast<uint8_t>(PipeType::too_big):
      m.type = PipeType::too_big;
      m.seq = r.u64();
      m.detail.assign(r.str32());
      break;
    case static_cast<uint8_t>(PipeType::withdrawn): {
      m.type = PipeType::withdrawn;
      m.seq = r.u64();
      uint8_t d = r.u8();
      if (r.ok() && d > 1) {
        err = "bad withdrawn flag " + std::to_string(d);
        return false;
      }
      m.dropped = d == 1;
      break;
    }
    default:
      err = in.empty() ? "empty pipe message" : "unexpected pipe message type " + std::to_string(t);
      return false;
  }
  if (!r.ok()) {
    err = "truncated pipe message (" + std::to_string(in.size()) + " bytes)";
    return false;
  }
  if (!r.done()) {
    err = "trailing bytes after pipe message";
    return false;
  }
  return true;
}

std::string encode_session(const SessionKeys& k) {
  std::string out;
  WireWriter w(out, 1 + 2 * kKeyBytes + 16);
  w.u8(static_cast<uint8_t>(PipeType::session));
  w.bytes({reinterpret_cast<const char*>(k.c2s.data()), k.c2s.size()});
  w.bytes({reinterpret_cast<const char*>(k.s2c.data()), k.s2c.size()});
  w.u64(k.c2s_n);
  w.u64(k.s2c_n);
  return out;
}

bool decode_session(std::string_view in, SessionKeys& k, std::string& err) {
  WireReader r(in);
  if (r.u8() != static_cast<uint8_t>(PipeType::session)) {
    err = "not a session message";
    return false;
  }
  std::string_view c2s = r.bytes(kKeyBytes), s2c = r.bytes(kKeyBytes);
  k.c2s_n = r.u64();
  k.s2c_n = r.u64();
  if (!r.done()) {
    err = "malformed session message (" + std::to_string(in.size()) + " bytes)";
    return false;
  }
  memcpy(k.c2s.data(), c2s.data(), kKeyBytes);
  memcpy(k.s2c.data(), s2c.data(), kKeyBytes);
  return true;
}

}  // namespace jsd
