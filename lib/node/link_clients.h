// The node's jsd-client children: one per remote node it sends to, started
// lazily (or at start-up), restarted when it dies, each fed the events
// queued for its node until the peer acknowledges them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "config.h"
#include "forming_window.h"
#include "link_spawn.h"
#include "link_state.h"
#include "peers.h"
#include "router.h"
#include "uvx.h"

namespace jsd {

class ClientEvents {
 public:
  virtual ~ClientEvents() = default;
  virtual void link_state(const std::string& key, LinkState state, const std::string& detail) = 0;
  virtual void child_gone() = 0;  // a child exited (the listener may be stopping)
  // The client kept event event_id back, for good: the peer would not read
  // it (larger than its max_frame); why says so.
  virtual void too_big(const std::string& key, uint64_t event_id, const std::string& why) {}
};

class LinkClients : public RouterLinks {
 public:
  LinkClients(uv_loop_t* loop, const Config& cfg, const Peers& peers, std::string bin_dir, uint64_t instance,
              LinkSpawn& spawn, ClientEvents& events)
      : loop_(loop),
        cfg_(cfg),
        peers_(peers),
        bin_dir_(std::move(bin_dir)),
        instance_(instance),
        spawn_(spawn),
        events_(events) {}
  ~LinkClients() override;

  void send(const std::string& key, const EventView& ev) override;
  void withdraw(const std::string& key, uint64_t event_id, std::function<void(bool dropped)> done) override;
  // Starts the client for key unless it runs.
  void ensure(const std::string& key);
  // The peer linked to us, so it is up: our client to it, if it waits out
  // a backoff, retries at once.
  void kick(const std::string& peer);
  // Its address changed: the client restarts with the new one.
  void restart(const std::string& key);
  // The peer left the configuration: its client ends once the withdraws
  // under way are answered, and is not restarted. What stays queued is
  // kept (sent if the peer comes back).
  void remove(const std::string& key);
  // The keys of the clients known (running, restarting or idle).
  std::vector<std::string> keys() const {
    std::vector<std::string> v;
    for (auto& [k, c] : procs_) v.push_back(k);
    return v;
  }
  // Bytes queued for key and not yet acknowledged by the peer.
  size_t backlog(const std::string& key) const;
  nlohmann::json links_json() const;
  int live() const { return live_; }
  // SIGTERM (then kill(): SIGKILL) to every client; none is restarted.
  void stop();
  void kill();
  // After the last one exited: drop every pipe and entry.
  void clear();

 private:
  struct Proc {
    std::string key;  // peer name, or host:port
    Child* child = nullptr;
    Stream* pipe = nullptr;
    std::deque<std::pair<uint64_t, std::string>> queue;  // seq, data message
    size_t queued_bytes = 0;
    uint64_t next_seq = 0;
    // Everything up to here was handed to a client that is gone, which may
    // have put it on a link: only a live client can say "never sent".
    uint64_t maybe_linked_upto = 0;
    std::multimap<uint64_t, std::function<void(bool)>> withdrawing;  // by seq: waiting for the client's answer
    LinkState state = LinkState::starting;
    std::string detail, remote_node;
    double since = 0;
    int restarts = 0;
    uint64_t restart_delay_ms = 0;
    uint64_t started_ms = 0;
    std::unique_ptr<Timer> restart_timer;
    uint64_t heard_ms = 0;   // last frame from the child, or when it was last excused (now_ms())
    uint64_t used_ms = 0;    // last event queued or acknowledged (now_ms())
    bool ending = false;     // SIGTERM for being idle: not restarted
    bool idle = false;       // ended for being idle: started again when needed
    bool removed = false;    // its peer left the configuration
    bool spawn_due = false;  // waits in spawn_queue_
    bool forming = false;    // started, its first handshake not yet over: holds a place in window_
  };
  // Starts c's client again if it ended for being idle.
  void wake(Proc& c);
  Proc& ensure_proc(const std::string& key);
  // Queues c's start: the starts run after the I/O the loop has ready, at
  // most kSpawnsPerTurn at a time, so a busy listener serves the
  // handshakes waiting on its port before it starts more clients (issue 20).
  // A started client forms its link (connect + handshake) while it holds
  // a forming slot; at most window_.width() do at once (forming_window.h),
  // so a node that starts with many peers (a mesh, a hub) forms its links
  // in waves instead of starting every link process at once and thrashing
  // the machine (issue 20: a 64-node mesh did not link in 900 s that way).
  // A slot is given back when the link is up or its attempt failed (ok
  // says which), or after kFormingMs.
  void spawn(Proc& c);
  void spawn_some();
  void formed(Proc& c, bool ok);
  void start_client(Proc& c);
  void on_msg(Proc& c, std::string_view p);
  void on_withdrawn(Proc& c, uint64_t seq, bool dropped);
  void pipe_lost(Proc& c);
  void on_exit(const std::string& key, Child* child, int64_t status, int sig);
  void watch();
  // The watch's next tick: on the grid of period (link_watch.h).
  void arm_watch(uint64_t period);
  // A child may be due within heartbeat_ms now (busy, forming, not up): a
  // watch that sleeps for the idle period ticks at the next heartbeat_ms.
  void watch_soon();

  uv_loop_t* loop_;
  const Config& cfg_;
  const Peers& peers_;
  std::string bin_dir_;
  uint64_t instance_;
  LinkSpawn& spawn_;
  ClientEvents& events_;
  std::map<std::string, std::unique_ptr<Proc>> procs_;
  std::unique_ptr<Deadline> watch_;  // replaces a stopped or hung client; a late tick reads the pipes first
  uint64_t watch_due_ = 0;           // uv_now() of its next tick
  std::deque<std::string> spawn_queue_;
  std::unique_ptr<Timer> spawn_timer_;
  static constexpr int kSpawnsPerTurn = 4;
  FormingWindow window_;
  static constexpr uint64_t kFormingMs = 5000;
  int live_ = 0;
  int forming_ = 0;
  bool stopping_ = false;
};

}  // namespace jsd
