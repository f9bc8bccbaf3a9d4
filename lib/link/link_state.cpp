#include "link_state.h"

namespace jsd {

const char* link_state_name(LinkState s) {
  switch (s) {
    case LinkState::starting:
      return "starting";
    case LinkState::connecting:
      return "connecting";
    case LinkState::up:
      return "up";
    case LinkState::down:
      return "down";
    case LinkState::refused:
      return "refused";
    case LinkState::rejected:
      return "rejected";
    case LinkState::restarting:
      return "restarting";
    case LinkState::waiting:
      return "waiting";
    case LinkState::retired:
      return "retired";
  }
  return "?";
}

bool link_state_from(uint8_t b, LinkState& s) {
  if (b < 1 || b > kLastLinkState) return false;
  s = static_cast<LinkState>(b);
  return true;
}

}  // namespace jsd
