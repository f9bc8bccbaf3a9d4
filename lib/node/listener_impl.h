// Internal: the listener's state, shared by listener.cpp (node port,
// handshakes, control socket, shutdown), supervisor.cpp (the jsd-client and
// jsd-queue-server children) and router.cpp (events and local objects).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "audit.h"
#include "control_msg.h"
#include "crypto.h"
#include "event.h"
#include "handshake.h"
#include "jobs.h"
#include "listener.h"
#include "outbox.h"
#include "pipe_msg.h"
#include "trust.h"
#include "uvx.h"

namespace jsd {

class Listener {
 public:
  Listener(uv_loop_t* loop, const ListenerOptions& o, const Trust& trust);
  ~Listener();
  int start();
  int exit_code() const { return exit_code_; }

  // --- supervisor.cpp ---
  struct ClientProc {
    std::string key;  // peer name, or host:port
    Child* child = nullptr;
    Stream* pipe = nullptr;
    std::deque<std::pair<uint64_t, std::string>> queue;  // seq, data message (event.h)
    size_t queued_bytes = 0;
    uint64_t next_seq = 0;
    LinkState state = LinkState::starting;
    std::string detail, remote_node;
    double since = 0;
    int restarts = 0;
    uint64_t restart_delay_ms = 0;
    uint64_t started_ms = 0;
    std::unique_ptr<Timer> restart_timer;
  };
  struct ServerProc {
    std::string peer;
    Child* child = nullptr;
    Stream* pipe = nullptr;
    uint16_t port = 0;
    LinkState state = LinkState::waiting;
    double since = 0;
    uint64_t instance = 0;
    std::unique_ptr<Timer> resume_timer;  // while paused for a slow tool
    bool exited = false;
    bool joined = false;      // its peer's ticket arrived: it is the peer's link
    bool learn_addr = false;  // a peer known by certificate: remember its address once joined
    Endpoint addr;
    std::string from, key_fp;  // the handshake's address and key, for the audit line
    bool by_cert = false;
    std::vector<std::string> cert_groups;  // applied when it joins
    // Its events while a replaced one's pipe is still being read.
    bool held = false;
    std::deque<std::string> held_msgs;
  };
  // Queue-servers whose peer has not sent its ticket yet. Only a joined one
  // replaces the peer's current queue-server: a replayed handshake message
  // (or an impostor) never disturbs a link that works.
  std::vector<std::unique_ptr<ServerProc>> joining_;
  bool promote(ServerProc* sp);
  std::vector<std::unique_ptr<ServerProc>> retired_servers_;  // replaced, pipe still draining
  void drop_server_if_done(ServerProc* sp);
  void pump(std::string peer);
  // A tool that reads its replies slower than they come: stop reading the
  // queue-server that feeds it (which then stops acknowledging, which stops
  // the job on the remote node) instead of buffering without bound.
  static constexpr size_t kToolHighWater = 8 << 20, kToolLowWater = 2 << 20;
  uint64_t congested_tool_ = 0;
  ClientProc& ensure_client(const std::string& key);
  void spawn_client(ClientProc& c);
  void on_client_msg(ClientProc& c, std::string_view p);
  void kick_client(const std::string& peer);
  void on_client_exit(const std::string& key, Child* child, int64_t status, int sig);
  bool start_queue_server(const std::string& peer, LinkResponder& hs, std::string& accept, uint16_t& port,
                          ServerProc*& sp, std::string& err);
  void on_server_msg(ServerProc* s, std::string_view p);
  void retire(Child* c);
  std::set<Child*> retiring_;
  std::unique_ptr<Timer> retire_timer_;
  std::string client_key_for(const std::string& node) const;

  // --- router.cpp ---
  void on_tool_msg(uint64_t tool, std::string_view p);
  void send_remote(const std::string& client_key, Event ev);
  void on_delivered(const std::string& peer, uint64_t instance, uint64_t seq, const Event& ev);
  void dispatch_local(const Event& ev, ReplyFn reply);
  void send_durable(uint64_t tool, const Event& ev, const Target& t);
  void replay_outbox();
  void deliver_outbox_entry(const OutboxEntry& e);
  bool resolve(const std::string& to, Target& t, std::string& err);
  void outbox_answered(uint64_t id, const std::string& body);
  void tool_error(uint64_t tool, uint64_t id, const std::string& why);
  void notify_tools_about(const std::string& client_key, LinkState state, const std::string& detail);
  nlohmann::json status_json();

  // --- listener.cpp ---
  struct Handshake;
  void on_node_connection(int status);
  void on_handshake_frame(Handshake* h, std::string_view p);
  bool admit_handshake(const std::string& host);
  void arm_handshake_timer(Handshake* h, uint64_t ms);
  static constexpr size_t kMaxHandshakes = 512, kMaxHandshakesPerHost = 32;
  static constexpr double kHandshakesPerSecond = 50;
  static constexpr uint64_t kFirstMessageMs = 1000;
  static constexpr size_t kHandshakeFrame = 8192;  // a handshake message with a certificate fits
  struct Bucket {
    double tokens = 0;
    uint64_t last_ms = 0;
  };
  std::map<std::string, Bucket> handshake_rate_;
  std::map<std::string, size_t> pending_by_host_;
  uint64_t dropped_ = 0, dropped_logged_ms_ = 0;
  void finish_handshake(Handshake* h, bool ok);
  void on_control_connection(int status);
  void shutdown(const std::string& why);
  void maybe_finish_shutdown();

  uv_loop_t* loop_;
  ListenerOptions o_;
  const Config& cfg_;
  const Trust& trust_;
  std::unique_ptr<Audit> audit_;
  // Groups a peer's certificate gave it, learnt at its handshake.
  std::map<std::string, std::vector<std::string>> cert_groups_;
  std::map<std::string, std::string> peer_fingerprints_;  // the key each peer last linked with
  std::map<std::string, uint64_t> refusals_logged_;       // reason -> when last logged
  void refusal(const std::string& line);
  static constexpr int kRefusalLinesPerWindow = 8;
  uint64_t refusal_window_ms_ = 0, refusals_suppressed_ = 0;
  int refusal_lines_ = 0;
  std::unique_ptr<Timer> refusal_timer_;
  uint64_t instance_;
  double started_ = 0;
  std::string bin_dir_;
  uv_tcp_t node_server_{};
  uv_pipe_t control_server_{};
  bool node_open_ = false, control_open_ = false, control_bound_ = false;
  std::map<Handshake*, std::unique_ptr<Handshake>> handshakes_;
  std::map<std::string, std::unique_ptr<ClientProc>> clients_;
  std::map<std::string, std::unique_ptr<ServerProc>> servers_;
  std::map<std::string, Endpoint> dynamic_peers_;              // allowed unknown peers, by name
  std::map<std::string, std::pair<uint64_t, uint64_t>> seen_;  // peer -> instance, last seq
  std::unordered_map<uint64_t, Stream*> tools_;
  uint64_t next_tool_ = 0, next_event_ = 0;
  struct Pending {
    uint64_t tool, tool_id;
    std::string client_key;
    std::string outbox_id;  // a durable submission: remove when answered
  };
  std::unique_ptr<JobRunner> jobs_;
  std::unique_ptr<Outbox> outbox_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::string last_to_;  // resolve_target cache for on_tool_msg
  Target last_target_;
  std::string last_key_;
  int live_children_ = 0;
  bool stopping_ = false, stopped_ = false;
  int exit_code_ = 0;
  std::unique_ptr<Timer> kill_timer_;
  std::unique_ptr<Signal> sig_term_, sig_int_, sig_hup_;
};

}  // namespace jsd
