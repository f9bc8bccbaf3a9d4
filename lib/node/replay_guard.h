// A replayed handshake message 1 costs nothing. An IK message 1 is
// authenticated (es, ss) but not fresh: anyone who recorded one can send it
// again, and the responder cannot tell it from the peer without a second
// round trip. So, like WireGuard's TAI64N timestamp, the initiator's hello
// carries its time (nanoseconds since the epoch, strictly increasing in one
// process) under the Noise payload encryption, and the node keeps the
// greatest time each peer has shown: a hello whose time is not later is
// refused before any port or process is spent on it.
//
// The times are kept in STATE_DIR/handshake-times ("NAME TIME" lines,
// replaced by rename at each change, not synced: a SIGKILL keeps the last
// change, a power loss may go back to an older one, which reopens only the
// replays of messages recorded in the seconds before it), so a restart of
// the listener does not reopen the window.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace jsd {

class ReplayGuard {
 public:
  // path: where the times are kept; "" keeps them in memory only.
  explicit ReplayGuard(std::string path) : path_(std::move(path)) {}
  // Reads what an earlier run kept (none is fine). Lines it cannot read are
  // skipped; false with err says how many (the rest still count).
  bool load(std::string& err);
  // True if t is later than every time peer has shown (and it is kept as
  // the latest); false if not: a replay, or a peer whose clock went back.
  // A failure to keep it on disk is in err (the hello is still fresh).
  bool advance(const std::string& peer, uint64_t t, std::string& err);
  uint64_t latest(const std::string& peer) const;
  size_t size() const { return latest_.size(); }

  static constexpr size_t kMaxPeers = 65536;  // a CA may certify many; the oldest times go first

 private:
  std::string path_;
  std::map<std::string, uint64_t> latest_;
};

}  // namespace jsd
