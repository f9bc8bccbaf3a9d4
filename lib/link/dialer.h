// One attempt to link to a node (steps 1-4 of the link): TCP to its node
// port, the Noise handshake (a fresh state for every attempt: nothing of a
// handshake that died half-way can confuse the next one), then TCP to the
// port the remote listener bound for our queue-server. It ends exactly once:
// with a connected stream and its sealed transport, or with a failure.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "handshake.h"
#include "link_state.h"
#include "sealed_link.h"
#include "trust.h"
#include "uvx.h"

namespace jsd {

struct DialResult {
  Stream* conn = nullptr;  // connected, not started: the caller owns it now
  std::unique_ptr<SealedLink> link;
  uint16_t port = 0;
  std::string server_node;  // the name the answering node proved
  uint64_t max_frame = 0;   // the largest frame its queue-server reads (0: not said)
};

class Dialer {
 public:
  // failed: state is down (try again soon), refused (the other side said
  // no) or rejected (we did: its key, its certificate, a broken answer).
  Dialer(uv_loop_t* loop, const Config& cfg, const Trust& trust, const Target& target, size_t max_batch,
         std::function<void(DialResult)> up, std::function<void(LinkState, const std::string& why)> failed);
  ~Dialer();  // an attempt still under way is dropped silently
  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;
  void start();

 private:
  void on_handshake(std::string_view p);
  void join(uint16_t port);
  void bind_source(Stream* c);
  void end_conn();
  void fail(LinkState state, const std::string& why);

  uv_loop_t* loop_;
  const Config& cfg_;
  const Trust& trust_;
  Target target_;
  size_t max_batch_;
  std::function<void(DialResult)> up_;
  std::function<void(LinkState, const std::string&)> failed_;
  Stream* conn_ = nullptr;
  std::unique_ptr<LinkInitiator> hs_;
  std::unique_ptr<SealedLink> link_;
  std::string server_node_;
  uint64_t server_max_frame_ = 0;
};

}  // namespace jsd
