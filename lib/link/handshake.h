// The link handshake on a listener's node port: Noise (revision 34) with
// 25519, ChaChaPoly and BLAKE2b, one fresh state per connection attempt.
//
//   IK  when the initiator has the responder's key pinned: one round trip.
//       -> 'I' flags msg1 (e, es, s, ss; payload: hello)
//       <- 'A' msg2        (e, ee, se; payload: {"node", "port"})
//   XX  when the initiator knows the responder only through a CA:
//       -> 'X' flags msg1 (e)
//       <- 'x' msg2        (e, ee, s, es; payload: {"node", "cert"})
//       -> 'y' msg3        (s, se; payload: hello)
//       <- 'P' sealed      ({"port"}, the responder's first transport message)
//   <- 'R' reason         refused (plain text: before the responder knows the
//                         peer there is nothing to encrypt it with; a forged
//                         refusal can only deny service, as dropping can)
//
// flags bit 0: a psk is mixed in (IKpsk1, XXpsk3); other bits are refused. hello is JSON
// {"node": claimed name, "addr": its node address, "to": the name it wants,
// "cert": its certificate if it has one, "time": the initiator's clock in
// nanoseconds since the epoch, later in every hello it sends}. The time is
// what makes a replayed IK message 1 detectable (replay_guard.h): it is
// encrypted and authenticated with the initiator's static key (ss). The prologue binds the jsd version.
// Nothing the responder learns from a message is acted on until the
// initiator has proved it is live: the first transport message on the
// queue-server port (the ticket) is that proof.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto.h"
#include "noise.h"
#include "trust.h"

namespace jsd {

struct Hello {
  std::string node, addr, to, cert;
  uint64_t time = 0;  // 0: none was sent
};

// The time for the next hello: the wall clock in nanoseconds, and later than
// the last one this process gave out even if the clock stepped back.
uint64_t next_hello_time();

class LinkInitiator {
 public:
  // target: the name we want (empty for a bare host:port); server_key: the
  // responder's pinned key if we have one (IK), else XX with its certificate.
  LinkInitiator(const Trust& trust, Hello hello, std::string target, std::optional<Key32> server_key);
  // The first frame to send.
  bool first(std::string& out, std::string& err);
  enum class Step { send, done, refused, failed };
  // A frame from the responder: send `out` (Step::send), or the handshake is
  // done (port(), keys()), or refused (err is the responder's reason), or
  // failed (err says why).
  Step on_frame(std::string_view frame, std::string& out, std::string& err);
  uint16_t port() const { return port_; }
  // The largest frame the responder's queue-server reads (0: it did not say).
  uint64_t server_max_frame() const { return max_frame_; }
  const std::string& server_node() const { return server_node_; }
  SessionKeys take_keys();
  bool used_ik() const { return ik_; }

 private:
  const Trust& trust_;
  Hello hello_;
  std::string target_, server_node_;
  std::optional<Key32> server_key_;
  noise::HandshakeState hs_;
  noise::CipherState c1_, c2_;
  bool ik_ = false, split_ = false;
  uint16_t port_ = 0;
  uint64_t max_frame_ = 0;
};

class LinkResponder {
 public:
  LinkResponder(const Trust& trust, std::string node);
  enum class Step { send, hello, refuse, failed };
  // A frame from the initiator: send `out` and wait (XX msg2), or the
  // initiator's hello is ready (hello(), peer_key(): the caller decides and
  // calls accept() or sends refuse()), or refuse with `out` as the refusal
  // frame and err as the reason, or failed (err; nothing to send).
  Step on_frame(std::string_view frame, std::string& out, std::string& err);
  const Hello& hello() const { return hello_; }
  const Key32& peer_key() const { return peer_key_; }
  // The last handshake frame, carrying the queue-server's port.
  // max_frame: the node's, told to the initiator so that its client keeps
  // back an event our queue-server would not read (0: not told).
  bool accept(uint16_t port, std::string& out, std::string& err, uint64_t max_frame = 0);
  SessionKeys take_keys();
  static std::string refuse(const std::string& reason);
  int steps() const { return steps_; }

 private:
  const Trust& trust_;
  std::string node_;
  noise::HandshakeState hs_;
  noise::CipherState c1_, c2_;
  Hello hello_;
  Key32 peer_key_{};
  bool ik_ = false, split_ = false;
  int steps_ = 0;
};

std::string hello_to_json(const Hello& h);
bool hello_from_json(std::string_view text, Hello& h, std::string& err);

}  // namespace jsd
