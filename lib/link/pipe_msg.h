// Messages on the pipe between jsd-listener and one of its link processes
// (a socketpair on the child's descriptor 3 or 4).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "crypto.h"
#include "event.h"
#include "link_state.h"

namespace jsd {

enum class PipeType : uint8_t {
  data = kDataType,  // listener -> client: an event to send; server -> listener: one received (event.h)
  session = 10,      // listener -> server: the link's transport keys (encode_session)
  ack = 12,          // client -> listener: the peer has every event up to seq
  state = 13,        // child -> listener: its link's state (server: with the peer's instance)
  retry = 14,        // listener -> client: the peer showed a sign of life; end the backoff
  withdraw = 15,     // listener -> client: drop data message seq if no link has carried it
  withdrawn = 16,    // client -> listener: the answer to withdraw seq (dropped or not)
  alive = 17,        // child -> listener, at its heartbeats: its loop runs (a stopped or hung one is replaced)
  too_big =
      18,  // client -> listener: data message seq is larger than the peer reads; dropped, never sent (detail: why)
};

struct PipeMsg {
  PipeType type = PipeType::state;
  uint64_t seq = 0;                   // data, ack, withdraw, withdrawn
  bool dropped = false;               // withdrawn: it never went on a link and never will
  LinkState state = LinkState::down;  // state
  std::string peer;                   // state: the node at the other end
  uint64_t instance = 0;              // state "up" from a server: the peer listener's instance
  std::string detail;                 // state: why (a refusal, the last error); too_big: why
};

// Room a pipe frame needs beyond max_frame (a data message's own fields).
constexpr size_t kPipeSlack = 4096;

// Not for data or session messages.
std::string encode_pipe(const PipeMsg& m);
// Never throws. A data message's event is left unread (only seq is set);
// a session message is refused here (decode_session reads it).
bool decode_pipe(std::string_view in, PipeMsg& m, std::string& err);

// The session message: both transport keys and the nonce each direction
// goes on from. The caller wipes the encoded bytes after sending them.
std::string encode_session(const SessionKeys& k);
bool decode_session(std::string_view in, SessionKeys& k, std::string& err);

}  // namespace jsd
