#include "queue_client.h"

#include <sodium.h>

#include <deque>
#include <memory>

#include "crypto.h"
#include "dialer.h"
#include "exit_codes.h"
#include "keepalive.h"
#include "link_msg.h"
#include "log.h"
#include "out_queue.h"
#include "pipe_msg.h"
#include "sealed_link.h"
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
        sig_term_(loop, SIGTERM, [this] { stop("SIGTERM", true); }),
        sig_int_(loop, SIGINT, [this] { stop("SIGINT", true); }) {
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
    arm(uint64_t(o_.cfg.heartbeat_ms));
    connect();
    return kExitOk;
  }

 private:
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
    if (!queue_.push(seq, p)) return;
    if (state_ == State::up && !fits(p)) return too_big(seq, p.size());
    if (state_ == State::up) queue_link(queue_.items().back().payload);
    // Someone wants the peer now: do not sit out a long backoff (but do not
    // hammer a host that is down either: one try per 100 ms at most).
    if (state_ == State::waiting && !stopping_ && !last_refused_ && now_ms() - last_attempt_ms_ >= kEagerRetryMs) {
      retry_.stop();
      connect();
    }
  }

  // The peer's queue-server closes a link that carries a frame larger than
  // its max_frame (it said how large in the handshake): such an event is
  // kept back, not sent again at every link-up for ever, and the listener
  // answers its call with the reason (Router::undeliverable).
  bool fits(std::string_view plain) const {
    return peer_max_frame_ == 0 || plain.size() + kFrameRoom <= peer_max_frame_ + kLinkSlack;
  }
  void too_big(uint64_t seq, size_t size) {
    if (!queue_.withdraw(seq)) return;  // on a link already: the peer reads it
    std::string who = server_node_.empty() ? target_.key() : server_node_;
    std::string why = "its request is " + std::to_string(size) + " bytes, more than " + who +
                      " reads (its max_frame is " + std::to_string(peer_max_frame_) + ")";
    log_warn("event " + std::to_string(seq) + " for " + who + " not sent: " + why);
    if (!sup_) return;
    PipeMsg m;
    m.type = PipeType::too_big;
    m.seq = seq;
    m.detail = why;
    sup_->send(encode_pipe(m));
  }

  // The listener takes data message seq back (its tool gave up on it): it
  // is dropped only if no link has carried it, and the answer says which.
  void withdraw(uint64_t seq) {
    bool dropped = queue_.withdraw(seq);
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
    deadline_.start(uint64_t(o_.cfg.handshake_timeout_ms), [this] {
      if (state_ != State::up) fail("handshake with " + target_.addr.str() + " timed out");
    });
    dialer_ = std::make_unique<Dialer>(
        loop_, o_.cfg, trust_, target_, std::min(kBatchBytes, o_.cfg.max_frame),
        [this](DialResult r) { on_up(std::move(r)); },
        [this](LinkState state, const std::string& why) {
          if (state == LinkState::down) return fail(why);
          refused(why, state);
        });
    dialer_->start();
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

  // Step 5 from our side: the link is up; the ticket (our hello, then
  // everything queued) goes first.
  void on_up(DialResult r) {
    dialer_.reset();
    server_node_ = r.server_node;
    peer_max_frame_ = r.max_frame;
    conn_ = r.conn;
    link_ = std::move(r.link);
    Stream* c = conn_;
    keepalive(c);
    c->on_close = [this](const std::string& why) {
      conn_ = nullptr;
      link_down(why.empty() ? "closed" : why);
    };
    c->on_frame = [this](std::string_view p) { on_link_frame(p); };
    c->start(o_.cfg.max_frame + kLinkSlack);
    link_->attach(c);
    LinkMsg hello{LinkType::hello};
    hello.node = o_.cfg.node;
    hello.instance = o_.instance;
    // Sealed and sent on its own: the queue-server reads no frame bigger
    // than kTicketFrame before the ticket.
    send_link(encode_link(hello));
    state_ = State::up;
    deadline_.stop();
    backoff_ = uint64_t(o_.cfg.reconnect_min_ms);
    last_rx_ = now_ms();
    waiting_since_ = 0;
    sleep_idle();  // the queue below makes it busy if it holds anything
    log_info("link to " + target_.key() + " is up (port " + std::to_string(r.port) + ", " +
             std::to_string(queue_.size()) + " queued)");
    report(LinkState::up);
    last_failure_.clear();
    last_refused_ = false;
    peer_stopping_ = false;
    // Kept back before anything is carried: only an item no link carried
    // can be taken out of the queue.
    std::vector<std::pair<uint64_t, size_t>> big;
    for (auto& it : queue_.items())
      if (!fits(it.payload)) big.emplace_back(it.seq, it.payload.size());
    for (auto& [seq, size] : big) too_big(seq, size);
    for (auto& it : queue_.items()) queue_link(it.payload);
    flush_link();
  }

  void queue_link(std::string_view plain) {
    if (!conn_ || !link_) return;
    uint64_t seq = 0;  // from here on it may reach the peer: withdraw() must know
    if (peek_data_seq(plain, seq)) {
      queue_.carried(seq);
      expect_answer();
    }
    link_->queue(plain);
  }

  // Something went out that the peer answers (an event: its ack; a
  // heartbeat: its heartbeat_ack): from now on the link is busy and must
  // show within dead_after_ms that it is alive.
  void expect_answer() {
    if (waiting_since_) return;
    waiting_since_ = now_ms();
    if (beat_due_ > waiting_since_ + uint64_t(o_.cfg.heartbeat_ms)) arm(uint64_t(o_.cfg.heartbeat_ms));
  }

  void arm(uint64_t ms) {
    beat_due_ = now_ms() + ms;
    beat_.start(ms, [this] { heartbeat(); });
  }
  // t: now_ms()'s clock (the loop's, read afresh).
  void arm_at(uint64_t t) {
    uint64_t now = uv_now(loop_);
    beat_due_ = t;
    beat_.start(t > now ? t - now : 0, [this] { heartbeat(); });
  }
  // The listener reads the "alive" lines of a host's idle clients (and a
  // queue-server of the same host its peers' probes) in a few wake-ups
  // instead of one each: they probe at the same instants. Early, never
  // late: a dead idle link is still found within idle_heartbeat_ms +
  // dead_after_ms.
  uint64_t probe_at() const {
    return idle_probe_at(last_rx_, uint64_t(o_.cfg.heartbeat_ms), uint64_t(o_.cfg.idle_heartbeat_ms));
  }
  // An idle link: the kernel watches it (keepalive.h) and nothing wakes
  // this process until the listener or the peer has something, or the
  // kernel gives the link up; or, where the kernel cannot keep jsd's
  // times, our own probe at probe_at().
  void sleep_idle() {
    if (!kernel_keepalive(o_.cfg)) return arm_at(probe_at());
    beat_.stop();
    beat_due_ = UINT64_MAX;  // expect_answer() and drop_conn() arm it again
  }
  void keepalive(Stream* c) {
    std::string err = stream_keepalive(c, o_.cfg);
    if (!err.empty()) log_warn("TCP keepalive on the link to " + target_.key() + ": " + err);
  }
  void flush_link() {
    if (conn_ && link_) link_->flush();
  }
  void send_link(std::string_view plain) {
    queue_link(plain);
    flush_link();
  }

  void on_link_frame(std::string_view p) {
    last_rx_ = now_ms();
    std::string err;
    if (!link_->open(p, msgs_, err)) return conn_->close("from queue-server: " + err);
    for (std::string_view one : msgs_) on_link_msg(one);
    // The peer is alive; the link stays busy (from now) while events wait
    // for its ack, and is idle once all are acknowledged.
    if (waiting_since_) {
      waiting_since_ = queue_.empty() ? 0 : last_rx_;
      // Idle again (the answer came): sleep until the next idle probe, not
      // one more busy beat first (a wake-up per idle link and probe).
      if (!waiting_since_ && state_ == State::up) sleep_idle();
    }
  }

  void on_link_msg(std::string_view one) {
    LinkMsg m;
    std::string err;
    if (!conn_) return;
    if (!decode_link(one, m, err)) {
      conn_->close("malformed message from queue-server: " + err);
      return;
    }
    if (m.type == LinkType::bye) {
      peer_stopping_ = true;
      return conn_->close(target_.key() + " is stopping");
    }
    if (m.type == LinkType::ack) {
      if (queue_.ack(m.seq) && sup_) {
        PipeMsg a;
        a.type = PipeType::ack;
        a.seq = m.seq;
        sup_->send(encode_pipe(a));
      }
    }
  }

  // The one timer of a client (issue 20: no wake-up per link per second
  // when idle). A busy link (an event or a heartbeat waits for its answer)
  // wakes every heartbeat_ms, sends a heartbeat if nothing arrived for that
  // long, and is dead when nothing arrived for dead_after_ms since it
  // became busy. An idle link sleeps: the kernel's keepalive ends it if
  // the peer's host or the network is gone (keepalive.h), within
  // idle_heartbeat_ms + dead_after_ms; a peer process that hangs is found
  // when the link is next used, within dead_after_ms. Where the kernel
  // cannot keep those times (sub-second settings) it sleeps until nothing
  // has arrived for idle_heartbeat_ms (probe_at()), then sends a
  // heartbeat, which makes it busy. A link that is not up wakes every
  // heartbeat_ms, as the listener expects of it.
  void heartbeat() {
    // The listener replaces a client whose loop stops (SIGSTOP, a hang);
    // it expects this line as often as the link wakes us (link_clients.cpp).
    if (sup_) {
      PipeMsg m;
      m.type = PipeType::alive;
      sup_->send(encode_pipe(m));
    }
    const uint64_t beat = uint64_t(o_.cfg.heartbeat_ms);
    if (stopping_) return;
    if (state_ != State::up || !conn_) return arm(beat);
    uint64_t now = now_ms(), quiet = now - last_rx_;
    if (waiting_since_ && now - waiting_since_ > uint64_t(o_.cfg.dead_after_ms)) {
      conn_->close("no answer from " + target_.key() + " for " + std::to_string(quiet) + " ms");
      return;
    }
    if (waiting_since_) {
      // Only where nothing arrived: traffic shows the peer alive already.
      if (quiet >= beat) send_link(encode_link({LinkType::heartbeat}));
      return arm(beat);
    }
    if (!kernel_keepalive(o_.cfg) && now + kSlackMs >= probe_at()) {
      send_link(encode_link({LinkType::heartbeat}));
      expect_answer();
      return arm(beat);
    }
    sleep_idle();
  }

  void fail(const std::string& why) {
    // The same failure every backoff interval is one line, not a flood; a
    // peer that said it is stopping is not expected to answer.
    if (why != last_failure_ && !peer_stopping_)
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
    if (was_up && peer_stopping_) {
      // It said bye: one line, and no retry until it shows a sign of life
      // (it links to us), something new is queued for it, or the longest
      // backoff has passed.
      log_info("link to " + target_.key() + " ended: " + target_.key() + " is stopping (" +
               std::to_string(queue_.size()) + " queued)");
      report(LinkState::down, target_.key() + " is stopping");
      drop_conn();
      return schedule_retry(true);
    }
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
    dialer_.reset();
    // Not up: the listener hears from us every heartbeat_ms again.
    waiting_since_ = 0;
    if (!stopping_ && beat_due_ > now_ms() + uint64_t(o_.cfg.heartbeat_ms)) arm(uint64_t(o_.cfg.heartbeat_ms));
    link_.reset();  // and what was batched for the old connection
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

  // tell_peer: our listener is stopping (SIGTERM): the peer hears "bye".
  void stop(const std::string& why, bool tell_peer = false) {
    if (stopping_) return;
    stopping_ = true;
    log_info("stopping: " + why +
             (queue_.empty()
                  ? ""
                  : " (" + std::to_string(queue_.size()) + " unacknowledged events stay with the listener)"));
    retry_.stop();
    beat_.stop();
    deadline_.stop();
    if (tell_peer && state_ == State::up && conn_ && link_) {
      send_link(encode_link({LinkType::bye}));
      Stream* c = conn_;
      conn_ = nullptr;
      c->on_close = nullptr;
      c->mute();
      c->when_flushed([c] { c->close(); });
    }
    drop_conn();
    if (sup_) sup_->close();
  }

  enum class State { waiting, handshake, joining, up };
  uv_loop_t* loop_;
  ClientOptions o_;
  const Trust& trust_;
  Target target_;
  Timer retry_, beat_;
  Deadline deadline_;  // uvx.h: the answer that waits in the socket is read before we call it late
  Signal sig_term_, sig_int_;
  State state_ = State::waiting;
  Stream* sup_ = nullptr;
  Stream* conn_ = nullptr;
  std::unique_ptr<Dialer> dialer_;
  std::unique_ptr<SealedLink> link_;
  std::vector<std::string_view> msgs_;
  bool stopping_ = false, last_refused_ = false, peer_stopping_ = false;
  std::string server_node_;
  uint64_t peer_max_frame_ = 0;  // what the peer's queue-server reads (0: it did not say)
  // Room a frame needs beyond its one message (lengths, the AEAD tag).
  static constexpr size_t kFrameRoom = 64;
  OutQueue queue_;
  uint64_t backoff_ = 20, last_rx_ = 0, last_attempt_ms_ = 0;
  uint64_t waiting_since_ = 0;             // busy since (an answer is due), or 0: idle
  uint64_t beat_due_ = 0;                  // when beat_ fires
  static constexpr uint64_t kSlackMs = 5;  // a timer that fires a little early still beats
  static constexpr uint64_t kEagerRetryMs = 100;
  static constexpr size_t kBatchBytes = 64 * 1024;
  std::string last_failure_;
};

}  // namespace

uint64_t idle_probe_at(uint64_t last_rx, uint64_t heartbeat_ms, uint64_t idle_heartbeat_ms) {
  uint64_t due = last_rx + idle_heartbeat_ms;
  // Not where that would probe almost as often as a busy link beats.
  if (heartbeat_ms == 0 || idle_heartbeat_ms < 2 * heartbeat_ms) return due;
  return due / heartbeat_ms * heartbeat_ms;
}

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
