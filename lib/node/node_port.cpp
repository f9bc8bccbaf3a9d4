#include "node_port.h"

#include <regex>

#include "log.h"
#include "metrics.h"
#include "peers.h"

namespace jsd {

struct NodePort::Handshake {
  Stream* s = nullptr;
  std::unique_ptr<LinkResponder> hs;
  std::unique_ptr<Deadline> timer;  // judged after a read: a stalled listener does not blame the peer
  std::string from;                 // the connection's address
  std::string host;                 // and without its port
  std::string claimed;
};

void RefusalLog::add(const std::string& line) {
  uint64_t now = now_ms();
  // The same refusal from the same host: a retry comes from a new source
  // port, which is not part of what makes it "the same".
  static const std::regex port_re(R"(^((?:refused|handshake from) [^ ]*):[0-9]+)");
  std::string key = std::regex_replace(line, port_re, "$1");
  auto it = logged_.find(key);
  if (it != logged_.end() && now - it->second < 60000) return log_debug(line);
  if (logged_.size() > 1024) logged_.clear();
  if (now - window_ms_ >= 10000) {
    window_ms_ = now;
    lines_ = 0;
  }
  if (lines_ >= kLinesPerWindow) {
    ++suppressed_;
    log_debug(line);
    if (!timer_) timer_ = std::make_unique<Timer>(loop_);
    if (!timer_->active())
      timer_->start(10000, [this] {
        log_warn(std::to_string(suppressed_) +
                 " more connections on the node port were refused or failed in the last 10 s (not logged one by one)");
        suppressed_ = 0;
      });
    return;
  }
  ++lines_;
  logged_[key] = now;
  log_warn(line);
}

NodePortLimits NodePortLimits::from(const Config& cfg) {
  NodePortLimits l;
  l.admission.max_pending_per_address = cfg.handshakes_per_address;
  l.admission.per_address_per_second = cfg.handshake_rate_per_address;
  return l;
}

bool NodePort::open(std::string& err) {
  std::string lerr;
  if (!replays_.load(lerr)) log_warn(lerr);
  struct sockaddr_storage ss {};
  int rc = uv_ip4_addr(cfg_.listen.host.c_str(), cfg_.listen.port, reinterpret_cast<sockaddr_in*>(&ss));
  if (rc != 0) rc = uv_ip6_addr(cfg_.listen.host.c_str(), cfg_.listen.port, reinterpret_cast<sockaddr_in6*>(&ss));
  if (rc == 0) {
    server_ = Stream::tcp(loop_);
    rc = server_ ? uv_tcp_bind(server_->tcp_handle(), reinterpret_cast<sockaddr*>(&ss), 0) : UV_ENOMEM;
  }
  if (rc == 0) rc = server_->listen(128, [this](int st) { on_connection(st); });
  if (rc != 0) {
    err = "cannot listen on " + cfg_.listen.str() + ": " + uv_error(rc);
    close();
    return false;
  }
  return true;
}

NodePort::NodePort(uv_loop_t* loop, const Config& cfg, const Trust& trust, Audit& audit, LinkServers& servers,
                   LinkClients& clients, const NodePortLimits* limits)
    : loop_(loop),
      cfg_(cfg),
      trust_(&trust),
      refused_audit_(audit, kRefusalIntervalMs),
      servers_(servers),
      clients_(clients),
      limits_(limits),
      refusals_(loop),
      admission_(limits ? limits->admission : AdmissionLimits{}, [] { return now_ms(); }),
      replays_(cfg.state_dir.empty() ? "" : cfg.state_dir + "/handshake-times") {}

NodePort::~NodePort() { close(); }

void NodePort::close() {
  if (server_) {
    server_->discard();
    server_ = nullptr;
  }
  while (!handshakes_.empty()) finish(handshakes_.begin()->first);
}

void NodePort::on_connection(int status) {
  if (status != 0 || !server_) return;
  Stream* s = Stream::tcp(loop_);
  if (!s) return;
  if (server_->accept(s) != 0) {
    s->close();
    return;
  }
  std::string from = s->peer_name();
  std::string host = from.substr(0, from.rfind(':'));
  NodePortLimits lim = limits();
  if (!admit(host)) {
    s->close();
    return;
  }
  uv_tcp_nodelay(s->tcp_handle(), 1);  // best effort: only latency depends on it
  auto h = std::make_unique<Handshake>();
  Handshake* hp = h.get();
  h->s = s;
  h->from = from;
  h->host = host;
  h->hs = std::make_unique<LinkResponder>(*trust_, cfg_.node);
  h->timer = std::make_unique<Deadline>(loop_);
  // The first message comes within a second (or handshake_timeout_ms if
  // shorter): a connection that says nothing does not hold a slot long.
  arm_timer(hp, std::min<uint64_t>(lim.first_message_ms, uint64_t(cfg_.handshake_timeout_ms)));
  s->on_frame = [this, hp](std::string_view p) { on_frame(hp, p); };
  s->on_close = [this, hp](const std::string& why) {
    hp->s = nullptr;
    ++outcomes_["closed"];
    if (!why.empty())
      refusals_.add("handshake from " + hp->from + (hp->claimed.empty() ? "" : " ('" + printable(hp->claimed) + "')") +
                    " failed: " + why);
    finish(hp);
  };
  handshakes_[hp] = std::move(h);
  s->start(lim.handshake_frame);
}

void NodePort::arm_timer(Handshake* h, uint64_t ms) {
  h->timer->start(ms, [this, h, ms] {
    ++outcomes_["timeout"];
    refusals_.add("handshake from " + h->from + " timed out after " + std::to_string(ms) + " ms");
    finish(h);
  });
}

// Admission (admission.h) says whether; the rest are closed at once and
// counted in one line every 10 s.
bool NodePort::admit(const std::string& host) {
  uint64_t now = now_ms();
  admission_.set_limits(limits().admission);
  const char* why = admission_.admit(host);
  if (!why) return true;
  ++outcomes_["limit"];
  if (dropped_ == 0 && now - dropped_logged_ms_ >= 10000) dropped_logged_ms_ = now - 10000;
  ++dropped_;
  if (now - dropped_logged_ms_ >= 10000) {
    log_warn("dropped " + std::to_string(dropped_) + " connection(s) on the node port in the last " +
             std::to_string((now - dropped_logged_ms_ + 999) / 1000) + " s (last from " + host + ": " + why + ")");
    dropped_ = 0;
    dropped_logged_ms_ = now;
  }
  return false;
}

void NodePort::finish(Handshake* h) {
  auto it = handshakes_.find(h);
  if (it == handshakes_.end()) return;
  admission_.done(h->host);
  if (h->s) {
    Stream* s = h->s;
    h->s = nullptr;
    // Let a last message (accept or refused) reach the peer first.
    s->mute();
    s->on_close = nullptr;
    s->when_flushed([s] { s->close(); });
  }
  handshakes_.erase(it);
}

void NodePort::on_frame(Handshake* h, std::string_view p) {
  std::string out, err;
  // It spoke in time: the whole handshake now has handshake_timeout_ms.
  if (h->hs->steps() == 0) arm_timer(h, uint64_t(cfg_.handshake_timeout_ms));
  switch (h->hs->on_frame(p, out, err)) {
    case LinkResponder::Step::send:
      h->s->send(out);
      return;
    case LinkResponder::Step::refuse:
      // Before the peer's key is known: the log says it (rate-limited); the
      // audit log records decisions about keys, not noise on the port.
      ++outcomes_[handshake_refusal_kind(out.substr(1))];
      refusals_.add("refused " + h->from + ": " + err);
      h->s->send(out);
      return finish(h);
    case LinkResponder::Step::failed:
      ++outcomes_["malformed"];
      refusals_.add("handshake from " + h->from + " failed: " + err);
      return finish(h);
    case LinkResponder::Step::hello:
      return on_hello(h);
  }
}

// The peer said who it is and proved its key: decide.
void NodePort::on_hello(Handshake* h) {
  std::string out, err;
  std::string fp = key_fingerprint(h->hs->peer_key());
  const Hello& hello = h->hs->hello();
  h->claimed = hello.node;
  PeerVerdict v = trust_->check_peer(hello.node, h->hs->peer_key(), hello.cert, static_cast<int64_t>(wall_time()));
  if (v.ok && !hello.to.empty() && hello.to != cfg_.node) {
    v.ok = false;
    v.reason = "it wants node '" + printable(hello.to) + "', this is " + cfg_.node;
  }
  LinkClaim claim;
  claim.learn_addr = v.ok && !cfg_.peers.count(hello.node);
  if (claim.learn_addr && !parse_endpoint(hello.addr, claim.addr, err)) {
    v.ok = false;
    v.reason = "bad address '" + printable(hello.addr) + "': " + err;
  }
  // A node listening on every address says 0.0.0.0 (or ::): reach it at
  // the address it came from. So is one that announces another host than
  // the one it connects from: an address names whoever answers there, and
  // a certified peer must not take the calls made to another node's
  // address by announcing it (its certificate names the node, not where
  // it is). Its own port stands.
  if (claim.learn_addr && v.ok) {
    std::string warning;
    claim.addr = reached_at(claim.addr, h->from, warning);
    if (!warning.empty()) log_warn(hello.node + " " + warning);
  }
  // A replayed message 1 (replay_guard.h) is refused here, before a port or
  // a process is spent on it, and without an audit line: it decides nothing
  // about a key. Logged like the other refusals, so 50 replays are a line.
  bool replayed = false;
  if (v.ok) {
    std::string werr;
    if (hello.time == 0) {
      v.ok = false;
      replayed = true;
      v.reason = "its hello has no time (a jsd too old to link with this one)";
    } else if (!replays_.advance(hello.node, hello.time, werr)) {
      v.ok = false;
      replayed = true;
      v.reason = "replayed handshake, or its clock went back (time " + std::to_string(hello.time) + " is not after " +
                 std::to_string(replays_.latest(hello.node)) + ", the latest from " + hello.node + ")";
    }
    if (!werr.empty()) log_error(werr);
  }
  // Queue-servers that wait for one peer's ticket: a few at once, not more
  // (with replays refused above, only the peer itself can start them).
  if (v.ok && servers_.joining(hello.node) >= limits().max_joining_per_peer) {
    v.ok = false;
    v.reason = "too many handshakes in progress for " + hello.node;
  }
  if (!v.ok && replayed) {
    refusals_.add("refused " + h->from + " ('" + printable(h->claimed) + "'): " + v.reason + " (key " + fp + ")");
    if (h->s) h->s->send(LinkResponder::refuse(hello.time == 0 ? v.reason : "replayed or stale handshake"));
    return finish(h);
  }
  if (!v.ok) {
    ++outcomes_[handshake_refusal_kind(v.reason)];
    // A refusal is recorded now; an allowed link once its ticket arrives,
    // so a replayed message 1 leaves no "allowed" line. Not synced: a
    // refusal allows nothing, and anyone can make keys.
    refused_audit_.add({{"what", "link"},
                        {"peer", printable(hello.node)},
                        {"key", fp},
                        {"address", h->from},
                        {"verdict", "refused"},
                        {"reason", v.reason}},
                       h->host, v.reason, now_ms());
    if (!refused_flush_) refused_flush_ = std::make_unique<Timer>(loop_);
    if (!refused_flush_->active())
      refused_flush_->start(
          kRefusalIntervalMs,
          [this] {
            refused_audit_.flush(now_ms());
            if (!refused_audit_.pending()) refused_flush_->stop();
          },
          kRefusalIntervalMs);
    refusals_.add("refused " + h->from + " ('" + printable(h->claimed) + "'): " + v.reason + " (key " + fp + ")");
    if (h->s) h->s->send(LinkResponder::refuse(v.reason));
    return finish(h);
  }
  std::string peer = hello.node;
  claim.from = h->from;
  claim.key_fp = fp;
  claim.by_cert = v.by_cert;
  claim.groups = v.groups;
  uint16_t port = 0;
  if (!servers_.start(peer, *h->hs, std::move(claim), out, port, err)) {
    ++outcomes_["no_queue_server"];
    log_error("cannot serve " + peer + ": " + err);
    if (h->s) h->s->send(LinkResponder::refuse("no queue-server available"));
    return finish(h);
  }
  log_info(peer + " (" + h->from + ", key " + fp + (v.by_cert ? ", certificate" : "") +
           ") passed the handshake; QueueServer_" + peer + " on port " + std::to_string(port));
  ++outcomes_["allowed"];
  h->s->send(out);
  finish(h);
  // Step 5 early: a pinned peer's reverse link can come up while its
  // forward link is still joining (replies need it soon). Starting a client
  // towards a configured address acts on nothing the message claims.
  if (cfg_.peers.count(peer)) clients_.ensure(peer);
}

}  // namespace jsd
