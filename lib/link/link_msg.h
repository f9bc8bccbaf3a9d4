// Messages on a link (jsd-client -> jsd-queue-server and back), inside the
// AEAD: several to a sealed frame, each length-prefixed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "event.h"

namespace jsd {

enum class LinkType : uint8_t {
  hello = 1,          // client -> server, first in the ticket: node, instance
  data = kDataType,   // seq + event (event.h)
  ack = 3,            // server -> client: every event up to seq reached the node
  heartbeat = 4,      // client -> server
  heartbeat_ack = 5,  // server -> client
  rekey = 6,          // the last message sealed with the sender's old key
  bye = 7,            // the sender's listener is stopping: not a failure, do not retry at once
};

struct LinkMsg {
  LinkMsg() = default;
  LinkMsg(LinkType t) : type(t) {}  // NOLINT: {LinkType::heartbeat} reads well
  LinkType type = LinkType::heartbeat;
  uint64_t seq = 0;       // data, ack
  std::string node;       // hello: the client's node
  uint64_t instance = 0;  // hello: the client's listener instance
};

// Not for data messages (encode_data builds those).
std::string encode_link(const LinkMsg& m);
// Never throws. A data message's event is left unread (hops forward it as
// it is; the listener decodes it): only its seq is set.
bool decode_link(std::string_view in, LinkMsg& m, std::string& err);

}  // namespace jsd
