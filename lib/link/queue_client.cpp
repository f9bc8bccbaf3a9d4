#include "queue_client.h"

#include <sodium.h>

#include <deque>
#include <memory>

#include "crypto.h"
#include "exit_codes.h"
#include "handshake.h"
#include "link_msg.h"
#include "log.h"
#include "pipe_msg.h"
#include "uvx.h"

namespace jsd {
namespace {

// Link life cycle: down -> handshake (listener port) -> joining (queue-server
// port) -> up -> down ... with backoff between attempts.
class QueueClient {
 public:
  QueueClient(uv_loop_t* loop, const ClientOptions& o, const Trust& trust, const Target& t)
      : loop_(loop),
        o_(o),
        trust_(trust),
        target_(t),
        retry_(loop),
        beat_(loop),
        deadline_(loop),
        sig_term_(loop, SIGTERM, [this] { stop("SIGTERM"); }),
        sig_int_(loop, SIGINT, [this] { stop("SIGINT"); }) {
    backoff_ = uint64_t(o.cfg.reconnect_min_ms);
  }

  int start() {
    std::string err;
    sup_ = Stream::open_fd(loop_, o_.supervisor_fd, err);
    if (!sup_) {
      log_error(err + " is not the listener's pipe (jsd-client is started by jsd-listener, not by hand)");
      return kExitStartupError;
    }
    sup_->on_frame = [this](std::string_view p) { on_supervisor(p); };
    // Everything one read brought goes out sealed together.
    sup_->on_frames_done = [this] { flush_link(); };
    sup_->on_close = [this](const std::string& why) {
      sup_ = nullptr;
      stop("listener pipe closed" + (why.empty() ? "" : ": " + why));
    };
    sup_->start(o_.cfg.max_frame + 4096);
    beat_.start(
        uint64_t(o_.cfg.heartbeat_ms), [this] { heartbeat(); }, uint64_t(o_.cfg.heartbeat_ms));
    connect();
    return kExitOk;
  }

 private:
  struct Item {
    uint64_t seq;
    std::string payload;  // a data message (event.h)
  };

  void on_supervisor(std::string_view p) {
    PipeMsg m;
    std::string err;
    if (!decode_pipe(p, m, err) ||
        (m.type != PipeType::retry && m.type != PipeType::data && m.type != PipeType::withdraw)) {
      log_error("unexpected message from the listener" + (err.empty() ? "" : ": " + err));
      return;
    }
    if (m.type == PipeType::retry) {
      // The peer showed a sign of life (it linked to us): a retry waiting
      // out its backoff goes now.
      if (state_ == State::waiting && !stopping_) {
        retry_.stop();
        backoff_ = uint64_t(o_.cfg.reconnect_min_ms);
        log_debug("peer " + target_.key() + " is back: retrying now");
        connect();
      }
      return;
    }
    if (m.type == PipeType::withdraw) return withdraw(m.seq);
    uint64_t seq = m.seq;
    // A restarted listener replays what it still holds; skip what we have.
    if (!queue_.empty() && seq <= queue_.back().seq) return;
    queue_.push_back({seq, std::string(p)});
    if (state_ == State::up) queue_link(queue_.back().payload);
    // Someone wants the peer now: do not sit out a long backoff (but do not
    // hammer a host that is down either: one try per 100 ms at most).
    if (state_ == State::waiting && !stopping_ && !last_refused_ && now_ms() - last_attempt_ms_ >= kEagerRetryMs) {
      retry_.stop();
      connect();
    }
  }

  // The listener takes data message seq back (its tool gave up on it): it
  // is dropped only if no link has carried it, and the answer says which.
  // Items go on a link in seq order, so the ones above linked_upto_ never did.
  void withdraw(uint64_t seq) {
    bool dropped = false;
    if (seq > linked_upto_)
      for (auto it = queue_.begin(); it != queue_.end(); ++it)
        if (it->seq == seq) {
          queue_.erase(it);
          dropped = true;
          break;
        }
    if (!sup_) return;
    PipeMsg a;
    a.type = PipeType::withdrawn;
    a.seq = seq;
    a.dropped = dropped;
    sup_->send(encode_pipe(a));
  }

  void report(LinkState state, const std::string& detail = "") {
    if (!sup_) return;
    PipeMsg m;
    m.type = PipeType::state;
    m.state = state;
    m.peer = server_node_.empty() ? target_.key() : server_node_;
    m.detail = detail;
    sup_->send(encode_pipe(m));
  }

  void connect() {
    if (stopping_) return;
    last_attempt_ms_ = now_ms();
    state_ = State::handshake;
    conn_ = Stream::tcp(loop_);
    // A fresh handshake state for every attempt: nothing of a handshake that
    // died half-way can confuse the next one.
    hs_.reset();
    Stream* c = conn_;
    c->on_close = [this](const std::string& why) {
      conn_ = nullptr;
      link_down("connection to " + target_.addr.str() + " lost during handshake" + (why.empty() ? "" : ": " + why));
    };
    deadline_.start(uint64_t(o_.cfg.handshake_timeout_ms), [this] {
      if (state_ != State::up) fail("handshake with " + target_.addr.str() + " timed out");
    });
    bind_source(c);
    int rc = c->connect(target_.addr, [this, c](int status) {
      if (status != 0) {
        fail("cannot reach " + target_.key() + " (" + target_.addr.str() + "): " + uv_error(status));
        return;
      }
      uv_tcp_nodelay(c->tcp_handle(), 1);
      c->on_frame = [this](std::string_view p) { on_handshake(p); };
      c->start(64 * 1024);
      // One pinned key: IK, one round trip. Several (a key rollover) or
      // none (a certified peer): XX, and the answer's key is checked.
      std::optional<Key32> server_key;
      if (auto* keys = trust_.pinned(target_.name); keys && keys->size() == 1) server_key = keys->front();
      hs_ = std::make_unique<LinkInitiator>(trust_, Hello{o_.cfg.node, o_.cfg.listen.str(), "", ""}, target_.name,
                                            server_key);
      std::string first, err;
      if (!hs_->first(first, err)) return fail("handshake with " + target_.key() + ": " + err);
      c->send(first);
    });
    if (rc != 0) fail("cannot connect to " + target_.addr.str() + ": " + uv_error(rc));
  }

  // Connect from this node's own address when it has one, so the peer sees
  // (and firewalls can match) the node rather than whatever the route picks.
  void bind_source(Stream* c) {
    const std::string& h = o_.cfg.listen.host;
    if (h == "0.0.0.0" || h == "::") return;
    struct sockaddr_storage ss {};
    if (uv_ip4_addr(h.c_str(), 0, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
        uv_ip6_addr(h.c_str(), 0, reinterpret_cast<sockaddr_in6*>(&ss)) != 0)
      return;
    int rc = uv_tcp_bind(c->tcp_handle(), reinterpret_cast<sockaddr*>(&ss), 0);
    if (rc != 0) log_debug("cannot bind source address " + h + ": " + uv_error(rc));
  }

  void on_handshake(std::string_view p) {
    std::string out, err;
    if (!hs_ || !conn_) return;
    switch (hs_->on_frame(p, out, err)) {
      case LinkInitiator::Step::send:
        conn_->send(out);
        return;
      case LinkInitiator::Step::refused:
        return refused(err, LinkState::refused);
      case LinkInitiator::Step::failed:
        return refused(err, LinkState::rejected);
      case LinkInitiator::Step::done:
        break;
    }
    server_node_ = hs_->server_node();
    // Step 4: the handshake connection has done its job; the link goes to
    // the port the remote listener bound for our queue-server.
    Stream* old = conn_;
    conn_ = nullptr;
    old->discard();
    join(hs_->port());
  }

  // state "refused": the other side said no; "rejected": we did (its key,
  // its certificate, or a broken answer). Neither cures itself quickly.
  void refused(const std::string& why, LinkState state) {
    last_refused_ = true;  // no eager retries against a node that said no
    std::string line = "link to " + target_.key() + (state == LinkState::refused ? " refused: " : " not made: ") + why;
    if (line != last_failure_)
      log_warn(line);  // once, not every retry
    else
      log_debug(line);
    last_failure_ = line;
    report(state, why);
    drop_conn();
    schedule_retry(true);
  }

  void join(uint16_t port) {
    state_ = State::joining;
    auto keys = hs_->take_keys();
    hs_.reset();
    chan_ = std::make_unique<SecureChannel>(keys.c2s, keys.c2s_n, keys.s2c, keys.s2c_n);
    chan_->start_clock(now_ms());
    keys.wipe();
    conn_ = Stream::tcp(loop_);
    Stream* c = conn_;
    c->on_close = [this](const std::string& why) {
      conn_ = nullptr;
      link_down(why.empty() ? "closed" : why);
    };
    Endpoint ep{target_.addr.host, port};
    bind_source(c);
    int rc = c->connect(ep, [this, c, port](int status) {
      if (status != 0) {
        fail("cannot connect to " + target_.key() + "'s queue-server port " + std::to_string(port) + ": " +
             uv_error(status));
        return;
      }
      uv_tcp_nodelay(c->tcp_handle(), 1);
      c->on_frame = [this](std::string_view p) { on_link_frame(p); };
      c->start(o_.cfg.max_frame + kLinkSlack);
      LinkMsg hello{LinkType::hello};
      hello.node = o_.cfg.node;
      hello.instance = o_.instance;
      send_link(encode_link(hello));
      state_ = State::up;
      deadline_.stop();
      backoff_ = uint64_t(o_.cfg.reconnect_min_ms);
      last_rx_ = now_ms();
      log_info("link to " + target_.key() + " is up (port " + std::to_string(port) + ", " +
               std::to_string(queue_.size()) + " queued)");
      report(LinkState::up);
      last_failure_.clear();
      last_refused_ = false;
      for (auto& it : queue_) queue_link(it.payload);
      flush_link();
    });
    if (rc != 0) fail("cannot connect to port " + std::to_string(port) + ": " + uv_error(rc));
  }

  // A sealed link frame carries a batch of messages, each length-prefixed:
  // one AEAD operation and one frame for all that is ready at once.
  void queue_link(std::string_view plain) {
    if (!conn_) return;
    uint64_t seq = 0;  // from here on it may reach the peer: withdraw() must know
    if (peek_data_seq(plain, seq) && seq > linked_upto_) linked_upto_ = seq;
    if (!batch_.empty() && batch_.size() + plain.size() > std::min(kBatchBytes, o_.cfg.max_frame)) flush_link();
    append_frame(batch_, plain);
  }

  void flush_link() {
    if (!conn_ || batch_.empty()) return;
    // Forward secrecy for a link that stays up for weeks: the last message
    // under the old key says so, and both ends replace it (Noise Rekey()).
    uint64_t now = now_ms();
    bool rekey = chan_->rekey_due(now, uint64_t(o_.cfg.rekey_after_s) * 1000);
    if (rekey) append_frame(batch_, encode_link({LinkType::rekey}));
    sealed_.clear();
    chan_->seal(batch_, sealed_);
    batch_.clear();
    if (rekey) {
      chan_->rekey_tx(now);
      log_debug("link to " + target_.key() + ": rekeyed (" + std::to_string(chan_->rekeys()) + ")");
    }
    conn_->send(sealed_);
  }

  void send_link(std::string_view plain) {
    queue_link(plain);
    flush_link();
  }

  void on_link_frame(std::string_view p) {
    last_rx_ = now_ms();
    std::string plain;
    if (!chan_->open(p, plain)) {
      conn_->close("frame from queue-server failed authentication");
      return;
    }
    std::string_view rest = plain, one;
    bool bad = false;
    rekey_rx_ = false;
    while (next_frame(rest, one, bad)) on_link_msg(one);
    if (bad && conn_) conn_->close("malformed frame from queue-server");
    // Frames after this one come under the peer's next key.
    if (rekey_rx_ && chan_) chan_->rekey_rx();
  }

  void on_link_msg(std::string_view one) {
    LinkMsg m;
    std::string err;
    if (!conn_) return;
    if (!decode_link(one, m, err)) {
      conn_->close("malformed message from queue-server: " + err);
      return;
    }
    if (m.type == LinkType::rekey) {
      rekey_rx_ = true;
      return;
    }
    if (m.type == LinkType::ack) {
      size_t n = 0;
      while (!queue_.empty() && queue_.front().seq <= m.seq) {
        queue_.pop_front();
        ++n;
      }
      if (n && sup_) {
        PipeMsg a;
        a.type = PipeType::ack;
        a.seq = m.seq;
        sup_->send(encode_pipe(a));
      }
    }
  }

  void heartbeat() {
    if (state_ != State::up || !conn_) return;
    uint64_t idle = now_ms() - last_rx_;
    if (idle > uint64_t(o_.cfg.dead_after_ms)) {
      conn_->close("no answer from " + target_.key() + " for " + std::to_string(idle) + " ms");
      return;
    }
    send_link(encode_link({LinkType::heartbeat}));
  }

  void fail(const std::string& why) {
    // The same failure every backoff interval is one line, not a flood.
    if (why != last_failure_)
      log_warn(why);
    else
      log_debug(why);
    last_failure_ = why;
    report(LinkState::down, why);
    drop_conn();
    schedule_retry(false);
  }

  void link_down(const std::string& why) {
    if (stopping_) return;
    bool was_up = state_ == State::up;
    if (was_up) {
      log_warn("link to " + target_.key() + " is down: " + why + " (" + std::to_string(queue_.size()) + " queued)");
      report(LinkState::down, why);
    } else if (state_ != State::waiting) {
      log_warn(why);
      report(LinkState::down, why);
    }
    drop_conn();
    schedule_retry(false);
  }

  void drop_conn() {
    deadline_.stop();
    batch_.clear();
    chan_.reset();
    if (conn_) {
      Stream* c = conn_;
      conn_ = nullptr;
      c->discard();
    }
  }

  void schedule_retry(bool refused) {
    if (stopping_ || state_ == State::waiting) return;
    state_ = State::waiting;
    // A refusal will not cure itself quickly: wait the longest interval.
    uint64_t wait = refused ? uint64_t(o_.cfg.reconnect_max_ms) : backoff_;
    backoff_ = std::min<uint64_t>(backoff_ * 2, uint64_t(o_.cfg.reconnect_max_ms));
    // Jitter (75-125 %): the clients of a restarted mesh do not all knock
    // at the same moment.
    wait = wait * (750 + randombytes_uniform(501)) / 1000;
    retry_.start(wait, [this] { connect(); });
  }

  void stop(const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    log_info("stopping: " + why +
             (queue_.empty()
                  ? ""
                  : " (" + std::to_string(queue_.size()) + " unacknowledged events stay with the listener)"));
    retry_.stop();
    beat_.stop();
    deadline_.stop();
    drop_conn();
    if (sup_) sup_->close();
  }

  enum class State { waiting, handshake, joining, up };
  uv_loop_t* loop_;
  ClientOptions o_;
  const Trust& trust_;
  Target target_;
  Timer retry_, beat_, deadline_;
  Signal sig_term_, sig_int_;
  State state_ = State::waiting;
  Stream* sup_ = nullptr;
  Stream* conn_ = nullptr;
  std::unique_ptr<LinkInitiator> hs_;
  std::unique_ptr<SecureChannel> chan_;
  bool stopping_ = false, rekey_rx_ = false, last_refused_ = false;
  std::string server_node_;
  std::deque<Item> queue_;
  uint64_t backoff_ = 20, last_rx_ = 0, last_attempt_ms_ = 0;
  uint64_t linked_upto_ = 0;  // the highest seq ever handed to a link
  static constexpr uint64_t kEagerRetryMs = 100;
  static constexpr size_t kBatchBytes = 64 * 1024;
  std::string sealed_, batch_, last_failure_;
};

}  // namespace

int run_queue_client(const ClientOptions& o) {
  Level lv = Level::info;
  parse_level(o.cfg.log_level, lv);
  log_init({"QueueClient_" + o.remote, lv, o.cfg.syslog});
  std::string err;
  Target t;
  std::vector<std::string> errors;
  Trust trust;
  // A peer known by its certificate has a name but no entry in peers: the
  // listener hands over the address it learnt, and the name stays bound.
  if (!o.address.empty()) {
    t.name = o.remote;
    if (!parse_endpoint(o.address, t.addr, err)) errors.push_back("--address: " + err);
  } else if (!resolve_target(o.cfg, o.remote, t, err)) {
    errors.push_back(err);
  }
  if (errors.empty()) load_trust(o.cfg, trust, errors);
  for (auto& e : errors) log_error(e);
  if (!errors.empty()) return kExitStartupError;
  return with_loop([&](uv_loop_t* loop) {
    QueueClient qc(loop, o, trust, t);
    int r = qc.start();
    if (r == 0) uv_run(loop, UV_RUN_DEFAULT);
    return r;
  });
}

}  // namespace jsd
