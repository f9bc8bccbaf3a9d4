#include "queue_server.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <memory>

#include "crypto.h"
#include "exit_codes.h"
#include "keepalive.h"
#include "link_msg.h"
#include "log.h"
#include "pipe_msg.h"
#include "sealed_link.h"
#include "uvx.h"

namespace jsd {
namespace {

class QueueServer {
 public:
  QueueServer(uv_loop_t* loop, const ServerOptions& o)
      : loop_(loop),
        o_(o),
        timer_(loop),
        sig_term_(loop, SIGTERM, [this] { stop("SIGTERM", true); }),
        sig_int_(loop, SIGINT, [this] { stop("SIGINT", true); }),
        // Replaced by a newer link of the same peer: no "bye", which would
        // tell the node at the other end that this node is stopping. If
        // that node is the real one and the newer link came from another
        // holder of its key, it sees its link drop and says so (a warning).
        sig_usr1_(loop, SIGUSR1, [this] { stop("retired by the listener (a newer link replaces it)"); }) {}
  ~QueueServer() { close_server(); }  // the owner lets go of its box (uvx.h)
  QueueServer(const QueueServer&) = delete;
  QueueServer& operator=(const QueueServer&) = delete;

  int start() {
    std::string err;
    sup_ = Stream::open_fd(loop_, o_.supervisor_fd, err);
    if (!sup_) {
      log_error(err + " is not the listener's pipe (jsd-queue-server is started by jsd-listener, not by hand)");
      return kExitStartupError;
    }
    sup_->on_frame = [this](std::string_view p) { on_supervisor(p); };
    sup_->on_close = [this](const std::string& why) {
      sup_ = nullptr;
      stop("listener pipe closed" + (why.empty() ? "" : ": " + why));
    };
    sup_->start(o_.cfg.max_frame + 4096);
    // The listener hears from us at each of the peer's heartbeats
    // (tell_alive()) and at each event, so an idle link wakes nobody in
    // between. If our loop stops (SIGSTOP, a hang), the peer's client gets
    // no ack within dead_after_ms, links again, and the listener retires
    // us for the new link (link_servers.cpp).

    server_ = Stream::tcp(loop_);
    int rc = !server_                  ? UV_ENOMEM
             : is_socket(o_.listen_fd) ? uv_tcp_open(server_->tcp_handle(), o_.listen_fd)
                                       : UV_ENOTSOCK;
    if (rc != 0) {
      log_error("fd " + std::to_string(o_.listen_fd) + " is not a listening socket: " + uv_error(rc));
      stop("start-up failed");  // closes what start() opened; the caller runs the loop to finish
      return kExitStartupError;
    }
    reported_ms_ = now_ms();
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getsockname(server_->tcp_handle(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
      port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    // Nobody but our peer may take the link: if it has not arrived in time,
    // give the port back.
    timer_.start(uint64_t(o_.cfg.handshake_timeout_ms), [this] {
      if (!link_)
        stop("no authenticated link from " + o_.peer + " within " + std::to_string(o_.cfg.handshake_timeout_ms) +
             " ms");
    });
    return kExitOk;
  }

 private:
  void on_supervisor(std::string_view p) {
    SessionKeys keys;
    std::string err;
    if (sealed_ || !decode_session(p, keys, err)) {
      keys.wipe();
      log_error("bad message from listener: " + (err.empty() ? "a second session" : err));
      return;
    }
    // The client's keys are the other way round: what it sends we receive.
    sealed_ =
        std::make_unique<SealedLink>(keys.s2c, keys.s2c_n, keys.c2s, keys.c2s_n,
                                     RekeyLimits{uint64_t(o_.cfg.rekey_after_s) * 1000, o_.cfg.rekey_after_frames},
                                     o_.cfg.max_frame, "link from " + o_.peer);
    keys.wipe();
    int rc = server_ ? server_->listen(16, [this](int status) { on_connection(status); }) : UV_EINVAL;
    if (rc != 0) stop("cannot listen: " + uv_error(rc));
  }

  void on_connection(int status) {
    if (status != 0 || stopping_) return;
    Stream* c = Stream::tcp(loop_);
    if (!c) return;
    if (!server_ || server_->accept(c) != 0) {
      c->close();
      return;
    }
    if (link_) {
      // One peer, one link: a second connection is not ours to take.
      ++closed_idle_;
      c->close();
      return;
    }
    // Only the peer's ticket is wanted here, and the peer sends it as soon
    // as it has connected: a few connections may try at once, each with a
    // small buffer and a short deadline; a flood on the port costs a
    // bounded number of descriptors and bytes.
    if (candidates_.size() >= o_.limits.max_candidates) {
      // The oldest that has not shown the ticket makes room: idle
      // connections cannot keep the real peer out.
      drop_candidate(candidates_.front().c);
      ++closed_idle_;
    }
    uv_tcp_nodelay(c->tcp_handle(), 1);
    candidates_.push_back({c, now_ms()});
    if (!sweep_.active()) sweep_.start(first_frame_ms() / 4 + 1, [this] { sweep(); });
    c->on_frame = [this, c](std::string_view p) {
      if (link_ == c)
        on_link_frame(p);
      else
        on_candidate_frame(c, p);
    };
    c->on_close = [this, c](const std::string& why) {
      // Counted with the rest, not logged one by one: a frame too big to be
      // the ticket, or a connection that hung up without one.
      if (forget_candidate(c)) ++(why.rfind("frame of", 0) == 0 ? closed_refused_ : closed_idle_);
    };
    c->start(o_.limits.ticket_frame);
  }

  uint64_t first_frame_ms() const {
    return std::min<uint64_t>(o_.limits.first_frame_ms, uint64_t(o_.cfg.handshake_timeout_ms));
  }

  // Candidates that have not sent the ticket within first_frame_ms() go.
  void sweep() {
    uint64_t now = now_ms();
    while (!candidates_.empty() && now - candidates_.front().since >= first_frame_ms()) {
      drop_candidate(candidates_.front().c);
      ++closed_idle_;
    }
    if (!candidates_.empty()) sweep_.start(first_frame_ms() / 4 + 1, [this] { sweep(); });
    report_closed(false);
  }

  void on_candidate_frame(Stream* c, std::string_view p) {
    LinkMsg m;
    std::string err;
    if (stopping_) return drop_candidate(c);
    // The ticket: the first sealed frame opens with this link's key and
    // starts with the client's hello.
    bool ok = sealed_->open(p, msgs_, err) && !msgs_.empty() && decode_link(msgs_[0], m, err) &&
              m.type == LinkType::hello && m.node == o_.peer;
    if (!ok) {
      // The first one is logged as it is, the rest are counted (report_closed()).
      if (!refusal_logged_)
        log_warn("refused a connection from " + c->peer_name() + ": not " + o_.peer + "'s authenticated link");
      else
        ++closed_refused_;
      refusal_logged_ = true;
      drop_candidate(c);
      return;
    }
    link_ = c;
    sealed_->attach(c);
    forget_candidate(c);
    c->set_max_frame(o_.cfg.max_frame + kLinkSlack);
    instance_ = m.instance;
    // The link is up: give the port back now (the seed's port lingered),
    // and with it every connection that is still trying.
    close_server();
    timer_.stop();
    drop_candidates();
    report_closed(true);
    c->on_close = [this](const std::string& why) {
      link_ = nullptr;
      sealed_->attach(nullptr);
      stop("link from " + o_.peer + " closed" + (why.empty() ? "" : ": " + why));
    };
    last_rx_ = now_ms();
    keepalive(c);
    if (!kernel_keepalive(o_.cfg)) timer_.start(silence_limit(), [this] { check_alive(); });
    log_info("link from " + o_.peer + " (" + c->peer_name() + ") is up");
    PipeMsg up;
    up.type = PipeType::state;
    up.state = LinkState::up;
    up.peer = o_.peer;
    up.instance = instance_;
    if (sup_) sup_->send(encode_pipe(up));
    // Events batched behind the hello.
    handle_msgs(1);
  }

  // True if c was a candidate.
  bool forget_candidate(Stream* c) {
    auto it = std::find_if(candidates_.begin(), candidates_.end(), [c](const Candidate& k) { return k.c == c; });
    if (it == candidates_.end()) return false;
    candidates_.erase(it);
    return true;
  }
  void drop_candidate(Stream* c) {
    forget_candidate(c);
    c->discard();
  }
  void drop_candidates() {
    closed_idle_ += candidates_.size();
    while (!candidates_.empty()) drop_candidate(candidates_.front().c);
    sweep_.stop();
  }

  // One line for the connections on our port that were not the peer's
  // link: at the end of the join (final) and at most every kReportMs while
  // it lasts, so that a flood on the port writes a few lines, not one each.
  void report_closed(bool final) {
    uint64_t now = now_ms();
    if (closed_idle_ + closed_refused_ == 0 || (!final && now - reported_ms_ < kReportMs)) return;
    reported_ms_ = now;
    log_warn("closed " + std::to_string(closed_idle_ + closed_refused_) + " other connection(s) on port " +
             std::to_string(port_) + (final ? " while waiting for " : " in the last 10 s while waiting for ") +
             o_.peer + "'s link (" + std::to_string(closed_refused_) + " sent something else, " +
             std::to_string(closed_idle_) + " sent nothing in time, hung up or made room)");
    closed_idle_ = closed_refused_ = 0;
  }

  // The kernel's keepalive ends a link whose peer host or network is gone
  // (keepalive.h), within idle_heartbeat_ms + dead_after_ms of its last
  // frame, and wakes nobody before: no timer of ours watches it then, and
  // the peer's client sends heartbeats only while it waits for an ack.
  void keepalive(Stream* c) {
    std::string err = stream_keepalive(c, o_.cfg);
    if (!err.empty()) log_warn("TCP keepalive on the link from " + o_.peer + ": " + err);
  }

  // Where the kernel cannot keep those times (sub-second settings), the
  // peer's client probes an idle link every idle_heartbeat_ms and a
  // busy one every heartbeat_ms: a link silent for longer than
  // idle_heartbeat_ms + dead_after_ms is dead (the client, which has
  // something to say, usually finds it first). One timer: a heartbeat
  // moves it on to a full silence_limit() (we are awake for it anyway), so
  // on an idle link it fires only when a probe is missing (issue 20: it
  // used to fire a few seconds after each probe, a second wake-up per
  // probe); other frames leave it alone and check_alive() moves it on
  // lazily.
  uint64_t silence_limit() const { return uint64_t(o_.cfg.idle_heartbeat_ms) + uint64_t(o_.cfg.dead_after_ms); }
  void check_alive() {
    uint64_t idle = now_ms() - last_rx_;
    if (!link_) return;
    if (idle > silence_limit()) return link_->close("no heartbeat for " + std::to_string(idle) + " ms");
    timer_.start(silence_limit() - idle + 1, [this] { check_alive(); });
  }

  // At most once per heartbeat_ms: the listener's watch counts in those.
  void tell_alive() {
    uint64_t now = now_ms();
    if (!sup_ || now - alive_sent_ < uint64_t(o_.cfg.heartbeat_ms) / 2) return;
    alive_sent_ = now;
    PipeMsg m;
    m.type = PipeType::alive;
    sup_->send(encode_pipe(m));
  }

  void on_link_frame(std::string_view p) {
    last_rx_ = now_ms();
    std::string err;
    if (!sealed_->open(p, msgs_, err)) return link_->close(err);
    handle_msgs(0);
  }

  // The messages of one sealed frame, from the first-th. Events go to the
  // listener as the same bytes, unparsed: only their type and seq are read
  // here.
  void handle_msgs(size_t first) {
    bool got_data = false;
    for (size_t i = first; link_ && i < msgs_.size(); ++i) {
      LinkMsg m;
      std::string err;
      if (!decode_link(msgs_[i], m, err)) {
        link_->close("malformed message: " + err);
        return;
      }
      if (m.type == LinkType::heartbeat) {
        send_link({LinkType::heartbeat_ack});
        tell_alive();
        if (!stopping_ && !kernel_keepalive(o_.cfg)) timer_.start(silence_limit(), [this] { check_alive(); });
        continue;
      }
      if (m.type == LinkType::bye) {
        // Its listener is stopping: one line, not a failure.
        bye_ = true;
        log_info("link from " + o_.peer + " ended: " + o_.peer + " is stopping");
        return link_->close();
      }
      if (m.type != LinkType::data) {
        link_->close("unexpected message type " + std::to_string(int(m.type)));
        return;
      }
      if (!sup_) return;
      sup_->send(msgs_[i]);  // a data message is the same bytes on the pipe (event.h)
      highest_ = m.seq;
      got_data = true;
    }
    if (!got_data) return;
    // Delayed, cumulative acks: one ack frame for many events, and none in
    // the way of a quick call/reply exchange; a bulk sender is acked every
    // kAckEvery events so its queue stays short.
    if (highest_ - acked_ >= kAckEvery) {
      if (!ack_waiting_) schedule_ack();
    } else if (!ack_timer_.active() && !ack_waiting_) {
      ack_timer_.start(kAckDelayMs, [this] {
        if (!ack_waiting_ && sup_) schedule_ack();
      });
    }
  }

  // Acknowledge only what reached the listener's socket: if this process
  // dies now, the listener still reads it; the client resends the rest.
  void schedule_ack() {
    ack_waiting_ = true;
    uint64_t s = highest_;
    sup_->when_flushed([this, s] {
      ack_waiting_ = false;
      LinkMsg a{LinkType::ack};
      a.seq = s;
      acked_ = s;
      send_link(a);
      if (highest_ > s && sup_) schedule_ack();
    });
  }

  void close_server() {
    if (server_) server_->discard();
    server_ = nullptr;
  }

  void send_link(const LinkMsg& m) {
    if (link_) sealed_->send(encode_link(m));
  }

  // tell_peer: our listener is stopping (SIGTERM): the peer hears "bye"
  // and waits for us to come back instead of retrying at once.
  void stop(const std::string& why, bool tell_peer = false) {
    if (stopping_) return;
    stopping_ = true;
    if (!bye_) log_info("stopping: " + why);
    timer_.stop();
    ack_timer_.stop();
    close_server();
    if (link_ && tell_peer) {
      send_link({LinkType::bye});
      Stream* l = link_;
      link_ = nullptr;
      sealed_->attach(nullptr);
      l->on_close = nullptr;
      l->mute();
      l->when_flushed([l] { l->close(); });
    } else if (link_) {
      link_->close();
    }
    // Connections that have not proved themselves yet go too.
    drop_candidates();
    report_closed(true);
    if (sup_) sup_->close();
  }

  uv_loop_t* loop_;
  ServerOptions o_;
  Deadline timer_;
  Signal sig_term_, sig_int_, sig_usr1_;
  Stream* server_ = nullptr;  // the port for our peer's link, until it is up
  Stream* sup_ = nullptr;
  Stream* link_ = nullptr;
  std::unique_ptr<SealedLink> sealed_;
  std::vector<std::string_view> msgs_;
  struct Candidate {
    Stream* c;
    uint64_t since;  // accepted (now_ms)
  };
  std::deque<Candidate> candidates_;  // oldest first
  // Deadlines (uvx.h): a queue-server started on a loaded machine reads the
  // ticket that waits in its socket before it judges anyone late.
  Deadline sweep_{loop_};
  uint16_t port_ = 0;
  uint64_t closed_idle_ = 0, closed_refused_ = 0, reported_ms_ = 0;
  bool refusal_logged_ = false;
  static constexpr uint64_t kAckEvery = 256, kAckDelayMs = 5, kReportMs = 10000;
  Timer ack_timer_{loop_};
  uint64_t instance_ = 0, highest_ = 0, acked_ = 0, last_rx_ = 0, alive_sent_ = 0;
  bool ack_waiting_ = false, stopping_ = false, bye_ = false;
};

}  // namespace

int run_queue_server(const ServerOptions& o) {
  log_init({"QueueServer_" + o.peer,
            [&] {
              Level l = Level::info;
              parse_level(o.cfg.log_level, l);
              return l;
            }(),
            o.cfg.syslog});
  std::string err;
  if (!crypto_init(err)) {
    log_error(err);
    return kExitStartupError;
  }
  return with_loop([&](uv_loop_t* loop) {
    QueueServer qs(loop, o);
    // A queue-server serves one link: it exits 0 when that link ends, for
    // whatever reason (the listener reads the reason from its log line).
    int rc = qs.start();
    uv_run(loop, UV_RUN_DEFAULT);  // on failure: lets the closes complete while qs lives
    return rc;
  });
}

}  // namespace jsd
