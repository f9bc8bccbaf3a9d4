// The node port: connections from other nodes, each a Noise handshake
// (handshake.h) that ends in a queue-server for the peer or a refusal.
// Before a peer is authenticated it costs little and is bounded: so many
// pending handshakes in all and per source address, so many new ones per
// second from one address, a short deadline for the first message, and
// log lines that cannot flood.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "admission.h"
#include "audit.h"
#include "config.h"
#include "link_clients.h"
#include "link_servers.h"
#include "replay_guard.h"
#include "trust.h"
#include "uvx.h"

namespace jsd {

// Refusals and failed handshakes: a refusal that repeats (a peer retrying
// with a wrong key) is logged once a minute, not at every retry; many
// different ones (a flood from many addresses) a few lines per 10 s, then
// one line that counts the rest.
class RefusalLog {
 public:
  explicit RefusalLog(uv_loop_t* loop) : loop_(loop) {}
  void add(const std::string& line);
  static constexpr int kLinesPerWindow = 8;

 private:
  uv_loop_t* loop_;
  std::map<std::string, uint64_t> logged_;  // line without source port -> when last logged
  uint64_t window_ms_ = 0, suppressed_ = 0;
  int lines_ = 0;
  std::unique_ptr<Timer> timer_;
};

// Every bound the node port puts on a connection before its peer is
// authenticated (and on the peer right after): the defaults are jsd's, the
// listener takes handshakes_per_address and handshake_rate_per_address from
// jsd.conf(5), and tests drive each one to its edge.
struct NodePortLimits {
  AdmissionLimits admission;
  uint64_t first_message_ms = 1000;  // or handshake_timeout_ms if that is shorter
  size_t handshake_frame = 8192;     // pre-authentication read limit; a message with a certificate fits
  int max_joining_per_peer = 4;      // queue-servers waiting for one peer's ticket
  static NodePortLimits from(const Config& cfg);
};

class NodePort {
 public:
  // limits: null for NodePortLimits::from(cfg) at each new connection (a
  // reload changes them); a test's own otherwise.
  NodePort(uv_loop_t* loop, const Config& cfg, const Trust& trust, Audit& audit, LinkServers& servers,
           LinkClients& clients, const NodePortLimits* limits = nullptr);
  ~NodePort();
  // Binds and listens on cfg.listen; false with err.
  bool open(std::string& err);
  // A reloaded configuration's keys, for the handshakes from now on.
  void set_trust(const Trust& t) { trust_ = &t; }
  // Stops listening and ends every pending handshake.
  void close();
  // Handshakes by outcome, for the metrics: "allowed" or a refusal kind (metrics.h).
  const std::map<std::string, uint64_t>& outcomes() const { return outcomes_; }
  // Refused links, each counted (audit-refused.log aggregates them).
  const std::map<std::pair<std::string, std::string>, uint64_t>& refused_decisions() const {
    return refused_audit_.decisions();
  }

  static constexpr uint64_t kRefusalIntervalMs = 60000;

 private:
  struct Handshake;
  void on_connection(int status);
  void on_frame(Handshake* h, std::string_view p);
  void on_hello(Handshake* h);
  bool admit(const std::string& host);
  NodePortLimits limits() const { return limits_ ? *limits_ : NodePortLimits::from(cfg_); }
  void arm_timer(Handshake* h, uint64_t ms);
  void finish(Handshake* h);

  uv_loop_t* loop_;
  const Config& cfg_;
  const Trust* trust_;  // replaced by set_trust(); the old one outlives the handshakes that use it
  // Refused links: STATE_DIR/audit-refused.log, one line per address and
  // reason per minute (audit.h).
  AuditRefusals refused_audit_;
  std::unique_ptr<Timer> refused_flush_;
  LinkServers& servers_;
  LinkClients& clients_;
  const NodePortLimits* limits_;
  RefusalLog refusals_;
  Stream* server_ = nullptr;
  Admission admission_;
  ReplayGuard replays_;
  uint64_t dropped_ = 0, dropped_logged_ms_ = 0;
  std::map<Handshake*, std::unique_ptr<Handshake>> handshakes_;
  std::map<std::string, uint64_t> outcomes_;
};

}  // namespace jsd
