// The node's jsd-queue-server children: one per peer that linked to us.
// A new one *joins* (waits for its peer's ticket) before it replaces the
// peer's current one, and a replaced one's pipe is read to the end before
// its successor's: what it acknowledged to the peer is in there.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "drain_order.h"
#include "event.h"
#include "handshake.h"
#include "link_spawn.h"
#include "link_state.h"
#include "uvx.h"

namespace jsd {

// What a handshake said about a peer; it counts once the peer's ticket
// arrives (a replayed message 1 must not change anything).
struct LinkClaim {
  std::string from;    // the connection's address
  std::string key_fp;  // the peer's key fingerprint
  bool by_cert = false;
  std::vector<std::string> groups;  // from its certificate
  bool learn_addr = false;          // a certified peer: remember its address
  Endpoint addr;                    // the address it says it listens on
};

class ServerEvents {
 public:
  virtual ~ServerEvents() = default;
  // The peer's ticket arrived: record it; false refuses the link.
  virtual bool joined(const std::string& peer, const LinkClaim& claim) = 0;
  // An event from peer; returns a tool to wait for (see Router::on_delivered).
  virtual uint64_t delivered(const std::string& peer, uint64_t instance, uint64_t seq, const Event& ev) = 0;
  virtual size_t tool_backlog(uint64_t tool) const = 0;
  virtual void link_up(const std::string& peer) = 0;  // the reverse direction may start
  virtual void child_gone() = 0;
};

class LinkServers {
 public:
  LinkServers(uv_loop_t* loop, const Config& cfg, std::string bin_dir, LinkSpawn& spawn, ServerEvents& events)
      : loop_(loop), cfg_(cfg), bin_dir_(std::move(bin_dir)), spawn_(spawn), events_(events) {}
  ~LinkServers();

  // Binds a port, finishes the handshake (accept: its last message) and
  // starts a joining queue-server for peer with the transport keys.
  bool start(const std::string& peer, LinkResponder& hs, LinkClaim claim, std::string& accept, uint16_t& port,
             std::string& err);
  // Queue-servers started for peer that wait for its ticket.
  int joining(const std::string& peer) const;
  nlohmann::json links_json() const;
  // The peer left the configuration, or the keys it may link with changed:
  // its queue-servers go (what they acknowledged is read to the end); a
  // peer still allowed links again.
  void retire_peer(const std::string& peer);
  // The peers with a current queue-server.
  std::vector<std::string> peers() const {
    std::vector<std::string> v;
    for (auto& [k, s] : current_) v.push_back(k);
    return v;
  }
  int live() const { return live_; }
  void stop();  // SIGTERM to all
  void kill();  // SIGKILL to all
  void clear();

  static constexpr uint64_t kRetireGraceMs = 5000;

 private:
  struct Proc : DrainSource {
    bool open() const override { return pipe != nullptr; }
    bool may_resume() const override { return !(resume_timer && resume_timer->active()); }
    void pause() override { pipe->pause(); }
    void resume() override { pipe->resume(); }
    std::string peer;
    Child* child = nullptr;
    Stream* pipe = nullptr;
    uint16_t port = 0;
    LinkState state = LinkState::waiting;
    double since = 0;
    uint64_t instance = 0;
    std::unique_ptr<Timer> resume_timer;  // while paused for a slow tool
    bool exited = false;
    bool joined = false;  // its peer's ticket arrived: it is the peer's link
    LinkClaim claim;
    uint64_t heard_ms = 0;  // last frame from it, or when it was last excused (now_ms())
  };
  bool promote(Proc* sp);
  void drop_if_done(Proc* sp);
  void pump(std::string peer);
  void retire(Child* c);
  void on_msg(Proc* s, std::string_view p);
  void on_data(Proc* s, std::string_view p);
  void watch();
  void arm_watch();  // the next tick: every idle period, on the grid (link_watch.h)

  uv_loop_t* loop_;
  const Config& cfg_;
  std::string bin_dir_;
  LinkSpawn& spawn_;
  ServerEvents& events_;
  std::vector<std::unique_ptr<Proc>> joining_;
  std::map<std::string, std::unique_ptr<Proc>> current_;
  std::vector<std::unique_ptr<Proc>> retired_;  // replaced, pipe still draining
  std::set<Child*> retiring_;
  std::unique_ptr<Timer> retire_timer_;
  std::unique_ptr<Deadline> watch_;  // kills a stopped or hung queue-server; a late tick reads the pipes first
  int live_ = 0;
  bool stopping_ = false;
};

}  // namespace jsd
