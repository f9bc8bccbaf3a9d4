// Messages on a node's control socket, between jsd-listener and its tools
// (jsd-ping, jsd-submit, jsd-listener --status and --metrics).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "event.h"
#include "link_state.h"

namespace jsd {

enum class ControlType : uint8_t {
  send = 20,          // tool -> listener: an event to route (ev.to names the target)
  status = 21,        // tool -> listener: what are your links and jobs?
  status_reply = 22,  // listener -> tool: status (JSON)
  error = 23,         // listener -> tool: the event id could not be sent: why
  reply = 24,         // listener -> tool: a reply to the tool's event ev.id
  notice = 25,        // listener -> tool: the link its event id waits on changed
  withdraw = 26,      // tool -> listener: take my call id back if it never left this node
  withdrawn = 27,     // listener -> tool: the answer to withdraw id (a verdict)
  metrics = 40,       // tool -> listener: your counters and gauges?
  metrics_text = 41,  // listener -> tool: them, in the Prometheus text format
};

// The answer to a withdraw. not_sent is a promise: the call never left this
// node and never will. unknown: it may have reached its node (or there was
// no such call in flight), so only the node's job record can tell.
enum class WithdrawVerdict : uint8_t { not_sent = 1, unknown = 2 };

struct ControlMsg {
  ControlType type = ControlType::status;
  bool durable = false;               // send: kept on disk until the target answers (--no-wait)
  Event ev;                           // send, reply
  uint64_t id = 0;                    // error, notice, withdraw, withdrawn: the tool's event they are about
  std::string why;                    // error
  std::string status;                 // status_reply: the listener's status object; metrics_text: the text
  std::string node;                   // notice: the node at the other end of the link
  LinkState state = LinkState::down;  // notice
  std::string detail;                 // notice
  WithdrawVerdict verdict = WithdrawVerdict::unknown;  // withdrawn
};

// Room a control frame needs beyond max_frame.
constexpr size_t kControlSlack = 4096;

std::string encode_control(const ControlMsg& m);
// Never throws: false with err on anything but one whole message.
bool decode_control(std::string_view in, ControlMsg& m, std::string& err);
// A send's event as views into the bytes (the listener forwards most
// events without copying them twice). False if in is not one whole send.
bool decode_send(std::string_view in, bool& durable, EventView& ev, std::string& err);

}  // namespace jsd
