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

#include "audit.h"
#include "config.h"
#include "link_clients.h"
#include "link_servers.h"
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

class NodePort {
 public:
  NodePort(uv_loop_t* loop, const Config& cfg, const Trust& trust, Audit& audit, LinkServers& servers,
           LinkClients& clients);
  ~NodePort();
  // Binds and listens on cfg.listen; false with err.
  bool open(std::string& err);
  // A reloaded configuration's keys, for the handshakes from now on.
  void set_trust(const Trust& t) { trust_ = &t; }
  // Stops listening and ends every pending handshake.
  void close();
  // Handshakes by outcome, for the metrics: "allowed" or a refusal kind (metrics.h).
  const std::map<std::string, uint64_t>& outcomes() const { return outcomes_; }

  static constexpr size_t kMaxHandshakes = 512, kMaxHandshakesPerHost = 32;
  static constexpr double kHandshakesPerSecond = 50;
  static constexpr uint64_t kFirstMessageMs = 1000;
  static constexpr size_t kHandshakeFrame = 8192;  // a handshake message with a certificate fits
  static constexpr int kMaxJoiningPerPeer = 4;

 private:
  struct Handshake;
  void on_connection(int status);
  void on_frame(Handshake* h, std::string_view p);
  void on_hello(Handshake* h);
  bool admit(const std::string& host);
  void arm_timer(Handshake* h, uint64_t ms);
  void finish(Handshake* h);

  uv_loop_t* loop_;
  const Config& cfg_;
  const Trust* trust_;  // replaced by set_trust(); the old one outlives the handshakes that use it
  Audit& audit_;
  LinkServers& servers_;
  LinkClients& clients_;
  RefusalLog refusals_;
  uv_tcp_t* server_ = nullptr;  // freed in its close callback
  struct Bucket {
    double tokens = 0;
    uint64_t last_ms = 0;
  };
  std::map<std::string, Bucket> rate_;
  std::map<std::string, size_t> pending_by_host_;
  uint64_t dropped_ = 0, dropped_logged_ms_ = 0;
  std::map<Handshake*, std::unique_ptr<Handshake>> handshakes_;
  std::map<std::string, uint64_t> outcomes_;
};

}  // namespace jsd
