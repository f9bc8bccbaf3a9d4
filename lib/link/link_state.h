// The states of a link as the listener tracks them and the tools see them.
#pragma once

#include <cstdint>
#include <string_view>

namespace jsd {

enum class LinkState : uint8_t {
  starting = 1,  // its process is being started
  connecting,    // handshake under way
  up,            // events flow
  down,          // lost or unreachable: retrying with backoff
  refused,       // the other node refused our key (final for waiting tools)
  rejected,      // our node rejected the other side's key or certificate
  restarting,    // its process died and is being restarted
  waiting,       // a queue-server waiting for its peer's ticket
  retired,       // a replaced queue-server, its pipe still being read
};
constexpr uint8_t kLastLinkState = static_cast<uint8_t>(LinkState::retired);

const char* link_state_name(LinkState s);
// False for a byte that names no state.
bool link_state_from(uint8_t b, LinkState& s);

}  // namespace jsd
