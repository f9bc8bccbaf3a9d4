// Events and the data message that carries one across a hop.
//
// An Event is what the design calls a frame's content: from, to, id, object,
// kind and a JSON body. Each channel has its own message type (link_msg.h
// between the nodes, pipe_msg.h between a listener and its link processes,
// control_msg.h between a listener and its tools); they share this event
// encoding. The encoding is a compact binary one so that hops which only
// forward an event never parse its JSON body.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "names.h"
#include "wire.h"

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

// The same event with its strings as views into the wire bytes: for hops
// that only rewrite a few fields of an event they forward.
struct EventView {
  Kind kind = Kind::notify;
  uint64_t id = 0;
  std::string_view from, to, object, body;
  bool more = false;
};
EventView view_of(const Event& e);
Event to_event(const EventView& v);

// kind u8, id u64, from/to/object str8, body str32, flags u8 (bit 0: more).
size_t event_size(const EventView& e);
void put_event(WireWriter& w, const EventView& e);
// False with err on an unknown kind or flags, or when r ran short.
bool get_event(WireReader& r, EventView& e, std::string& err);

// The data message: type u8 (kDataType), seq u64, event. The same bytes on a
// link and on the pipe between a listener and its link processes: a
// jsd-client sends what its listener queued, and a queue-server hands the
// listener what came over the link, both without parsing the event.
constexpr uint8_t kDataType = 2;
void encode_data_into(std::string& out, uint64_t seq, const EventView& e);
std::string encode_data(uint64_t seq, const Event& e);
// Never throws: false with err on anything but one whole data message.
bool decode_data(std::string_view in, uint64_t& seq, EventView& e, std::string& err);
// A data message's sequence number without decoding its event: the one
// place a sequence number is read (false: not a data message).
bool peek_data_seq(std::string_view in, uint64_t& seq);

// Room a link frame needs beyond max_frame: a message's own fields, the
// batch's length prefix and the AEAD tag.
constexpr size_t kLinkSlack = 8192;

// The ticket, the first frame on a queue-server port: the client's sealed
// hello, sent on its own. Until it has come, a connection there may send no
// bigger frame (and reads into a buffer of this size).
constexpr size_t kTicketFrame = 4096;

}  // namespace jsd
