// Events and the messages that carry them between jsd processes.
//
// An Event is what the design calls a frame's content: from, to, id, object,
// kind and a JSON body. A Msg wraps an event (or a link-control message:
// hello, ack, heartbeat, state) for one hop. The encoding is a compact binary
// one so that hops which only forward an event never parse its JSON body.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "names.h"

namespace jsd {

enum class Kind : uint8_t { call = 1, reply = 2, notify = 3 };
const char* kind_name(Kind k);

struct Event {
  Kind kind = Kind::notify;
  uint64_t id = 0;
  std::string from;
  std::string to;
  std::string object;
  std::string body;  // JSON text (raw bytes for a job's output chunks)
  // A reply with more=true is partial (a start confirmation, output): the
  // call stays open until a reply with more=false.
  bool more = false;
};

enum class MsgType : uint8_t {
  // On a link (QueueClient -> QueueServer and back), inside the AEAD.
  link_hello = 1,  // client introduces itself: peer = from node, instance
  data = 2,        // seq + event
  ack = 3,         // seq: everything up to seq was handed to the node
  heartbeat = 4,
  heartbeat_ack = 5,
  rekey = 6,  // the last message sealed with the old key (Noise Rekey())
  // On the supervisor pipe between jsd-listener and its children.
  session = 10,     // listener -> queue-server: text = session secrets
  deliver = 11,     // queue-server -> listener: peer, instance, seq, event
  link_state = 12,  // child -> listener: peer, text = state, detail in event.body
  // On the local control socket between a tool and jsd-listener.
  send = 20,    // tool -> listener: event to route (event.to = node)
  status = 21,  // tool -> listener: status query; listener -> tool: text = JSON
  error = 22,   // listener -> tool: seq = the tool's event id, text = reason
  shutdown = 23,
};

// Room a link frame needs beyond max_frame: a message's own fields, the
// batch's length prefix and the AEAD tag.
constexpr size_t kLinkSlack = 8192;

struct Msg {
  Msg() = default;
  explicit Msg(MsgType t) : type(t) {}
  MsgType type = MsgType::data;
  uint64_t seq = 0;
  uint64_t instance = 0;
  std::string peer;
  std::string text;
  Event ev;
};

// The same message with its strings as views into the wire bytes: for hops
// that only rewrite a few fields of an event they forward.
struct MsgView {
  MsgType type = MsgType::data;
  uint64_t seq = 0, instance = 0;
  std::string_view peer, text;
  Kind kind = Kind::notify;
  uint64_t id = 0;
  std::string_view from, to, object, body;
  bool more = false;
};
bool decode_view(std::string_view in, MsgView& v, std::string& err);
void encode_view_into(std::string& out, const MsgView& v);

std::string encode(const Msg& m);
void encode_into(std::string& out, const Msg& m);
// Returns false and sets err on malformed input; never throws.
bool decode(std::string_view in, Msg& m, std::string& err);

}  // namespace jsd
