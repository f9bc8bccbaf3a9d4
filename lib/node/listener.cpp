// jsd-listener: node port, handshakes, control socket, start and stop.
#include "listener.h"

#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <regex>

#include "listener_impl.h"
#include "log.h"

namespace jsd {

using nlohmann::json;

struct Listener::Handshake {
  Stream* s = nullptr;
  std::unique_ptr<LinkResponder> hs;
  std::unique_ptr<Timer> timer;
  std::string from;  // the connection's address
  std::string host;  // and without its port
  std::string claimed;
};

Listener::Listener(uv_loop_t* loop, const ListenerOptions& o, const Trust& trust)
    : loop_(loop), o_(o), cfg_(o_.cfg), trust_(trust) {
  randombytes_buf(&instance_, sizeof instance_);
  bin_dir_ = self_dir();
  if (const char* d = getenv("JSD_LIBEXEC_DIR"); d && *d) bin_dir_ = d;
}

Listener::~Listener() = default;

// A refusal that repeats (a peer retrying with a wrong key) is logged once
// a minute, not at every retry.
void Listener::refusal(const std::string& line) {
  uint64_t now = now_ms();
  // The same refusal from the same host: a retry comes from a new source
  // port, which is not part of what makes it "the same".
  static const std::regex port_re(R"(^((?:refused|handshake from) [^ ]*):[0-9]+)");
  std::string key = std::regex_replace(line, port_re, "$1");
  auto it = refusals_logged_.find(key);
  if (it != refusals_logged_.end() && now - it->second < 60000) return log_debug(line);
  if (refusals_logged_.size() > 1024) refusals_logged_.clear();
  // Many different ones (a flood from many addresses): a few lines, then
  // one line that counts the rest.
  if (now - refusal_window_ms_ >= 10000) {
    refusal_window_ms_ = now;
    refusal_lines_ = 0;
  }
  if (refusal_lines_ >= kRefusalLinesPerWindow) {
    ++refusals_suppressed_;
    log_debug(line);
    if (!refusal_timer_) refusal_timer_ = std::make_unique<Timer>(loop_);
    if (!refusal_timer_->active())
      refusal_timer_->start(10000, [this] {
        log_warn(std::to_string(refusals_suppressed_) +
                 " more connections on the node port were refused or failed in the last 10 s (not logged one by one)");
        refusals_suppressed_ = 0;
      });
    return;
  }
  ++refusal_lines_;
  refusals_logged_[key] = now;
  log_warn(line);
}

namespace {

bool make_state_dir(const std::string& dir, std::string& err) {
  std::string cur;
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      cur = dir.substr(0, i);
      if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
        err = "cannot create state_dir " + cur + ": " + strerror(errno);
        return false;
      }
    }
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    err = "state_dir " + dir + " is not a directory";
    return false;
  }
  if (st.st_uid != geteuid()) {
    err = "state_dir " + dir + " belongs to another user";
    return false;
  }
  if (st.st_mode & 077) chmod(dir.c_str(), 0700);
  return true;
}

// True if a live process answers on the Unix socket.
bool socket_answers(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int Listener::start() {
  std::string err;
  started_ = wall_time();
  if (!make_state_dir(cfg_.state_dir, err)) {
    log_error(err);
    return 1;
  }
  std::string sock = cfg_.control_socket();
  if (sock.size() >= sizeof(sockaddr_un::sun_path)) {
    log_error("control socket path " + sock + " is too long; choose a shorter state_dir");
    return 1;
  }
  if (socket_answers(sock)) {
    log_error("another jsd-listener is running for this node (" + sock + " answers)");
    return 1;
  }
  unlink(sock.c_str());

  audit_ = std::make_unique<Audit>(cfg_.audit_log(), cfg_.audit_max_bytes);
  if (!audit_->open(err)) {
    log_error(err);
    return 1;
  }
  jobs_ = std::make_unique<JobRunner>(loop_, cfg_);
  outbox_ = std::make_unique<Outbox>(cfg_.state_dir + "/outbox");
  if (!jobs_->open(err) || !outbox_->open(err)) {
    log_error(err);
    return 1;
  }
  jobs_->on_idle = [this] { maybe_finish_shutdown(); };
  jobs_->in_group = [this](const std::string& peer, const std::string& group) {
    auto g = cfg_.groups.find(group);
    if (g != cfg_.groups.end() && std::find(g->second.begin(), g->second.end(), peer) != g->second.end()) return true;
    auto c = cert_groups_.find(peer);
    return c != cert_groups_.end() && std::find(c->second.begin(), c->second.end(), group) != c->second.end();
  };
  jobs_->audit = [this](nlohmann::json entry, bool sync) {
    auto k = peer_fingerprints_.find(entry.value("peer", ""));
    if (k != peer_fingerprints_.end()) entry["key"] = k->second;
    return audit_->record(std::move(entry), sync);
  };
  // A job's output waits in the queue to its submitter until acknowledged:
  // the runner stops reading a job whose submitter's queue is this full.
  jobs_->backlog = [this](const std::string& from) -> size_t {
    auto it = clients_.find(client_key_for(from));
    return it == clients_.end() ? 0 : it->second->queued_bytes;
  };

  // Node port first: if it is taken, fail before touching anything else.
  struct sockaddr_storage ss {};
  int rc = uv_ip4_addr(cfg_.listen.host.c_str(), cfg_.listen.port, reinterpret_cast<sockaddr_in*>(&ss));
  if (rc != 0) rc = uv_ip6_addr(cfg_.listen.host.c_str(), cfg_.listen.port, reinterpret_cast<sockaddr_in6*>(&ss));
  uv_tcp_init(loop_, &node_server_);
  node_server_.data = this;
  node_open_ = true;
  if (rc == 0) rc = uv_tcp_bind(&node_server_, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&node_server_), 128,
                   [](uv_stream_t* s, int st) { static_cast<Listener*>(s->data)->on_node_connection(st); });
  if (rc != 0) {
    log_error("cannot listen on " + cfg_.listen.str() + ": " + uv_error(rc));
    return 1;
  }

  uv_pipe_init(loop_, &control_server_, 0);
  control_server_.data = this;
  control_open_ = true;
  mode_t old = umask(077);  // the socket is born 0600
  rc = uv_pipe_bind(&control_server_, sock.c_str());
  umask(old);
  control_bound_ = rc == 0;
  if (rc == 0) rc = chmod(sock.c_str(), 0600) == 0 ? 0 : uv_translate_sys_error(errno);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&control_server_), 128,
                   [](uv_stream_t* s, int st) { static_cast<Listener*>(s->data)->on_control_connection(st); });
  if (rc != 0) {
    log_error("cannot listen on control socket " + sock + ": " + uv_error(rc));
    return 1;
  }

  sig_term_ = std::make_unique<Signal>(loop_, SIGTERM, [this] { shutdown("SIGTERM"); });
  sig_int_ = std::make_unique<Signal>(loop_, SIGINT, [this] { shutdown("SIGINT"); });
  sig_hup_ = std::make_unique<Signal>(
      loop_, SIGHUP, [] { log_info("SIGHUP ignored: restart the listener to reload its configuration"); });

  log_info("node " + cfg_.node + " listening on " + cfg_.listen.str() + ", control socket " + sock);
  for (auto& peer : cfg_.connect_at_startup) ensure_client(peer);
  replay_outbox();

  if (o_.ready_fd >= 0) {
    ssize_t n = write(o_.ready_fd, "ready\n", 6);
    (void)n;
    ::close(o_.ready_fd);
  }
  return 0;
}

void Listener::on_node_connection(int status) {
  if (status != 0 || stopping_) return;
  Stream* s = Stream::tcp(loop_);
  if (!s) return;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&node_server_), s->stream()) != 0) {
    s->close();
    return;
  }
  std::string from = s->peer_name();
  std::string host = from.substr(0, from.rfind(':'));
  // Before a peer is authenticated it costs little and is bounded: so many
  // pending handshakes in all and per source address, and so many new ones
  // per second from one address; the rest are closed at once and counted
  // in one line every 10 s.
  if (!admit_handshake(host)) {
    s->close();
    return;
  }
  uv_tcp_nodelay(s->tcp_handle(), 1);
  auto h = std::make_unique<Handshake>();
  Handshake* hp = h.get();
  h->s = s;
  h->from = from;
  h->host = host;
  ++pending_by_host_[host];
  h->hs = std::make_unique<LinkResponder>(trust_, cfg_.node);
  h->timer = std::make_unique<Timer>(loop_);
  // The first message comes within a second (or handshake_timeout_ms if
  // shorter): a connection that says nothing does not hold a slot long.
  arm_handshake_timer(hp, std::min<uint64_t>(kFirstMessageMs, uint64_t(cfg_.handshake_timeout_ms)));
  s->on_frame = [this, hp](std::string_view p) { on_handshake_frame(hp, p); };
  s->on_close = [this, hp](const std::string& why) {
    hp->s = nullptr;
    if (!why.empty())
      refusal("handshake from " + hp->from + (hp->claimed.empty() ? "" : " ('" + printable(hp->claimed) + "')") +
              " failed: " + why);
    finish_handshake(hp, false);
  };
  handshakes_[hp] = std::move(h);
  s->start(kHandshakeFrame);
}

void Listener::arm_handshake_timer(Handshake* h, uint64_t ms) {
  h->timer->start(ms, [this, h, ms] {
    refusal("handshake from " + h->from + " timed out after " + std::to_string(ms) + " ms");
    finish_handshake(h, false);
  });
}

bool Listener::admit_handshake(const std::string& host) {
  uint64_t now = now_ms();
  auto& b = handshake_rate_[host];
  // A token bucket per source address: kHandshakesPerSecond, bursts of twice that.
  double cap = 2.0 * kHandshakesPerSecond;
  b.tokens = b.last_ms ? std::min(cap, b.tokens + double(now - b.last_ms) * kHandshakesPerSecond / 1000.0) : cap;
  b.last_ms = now;
  const char* why = nullptr;
  if (handshakes_.size() >= kMaxHandshakes)
    why = "too many handshakes pending";
  else if (pending_by_host_[host] >= kMaxHandshakesPerHost)
    why = "too many handshakes pending from one address";
  else if (b.tokens < 1.0)
    why = "too many new connections from one address";
  else
    b.tokens -= 1.0;
  if (handshake_rate_.size() > 4096) handshake_rate_.clear();  // bounded, not precise
  if (!why) return true;
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

void Listener::finish_handshake(Handshake* h, bool) {
  auto it = handshakes_.find(h);
  if (it == handshakes_.end()) return;
  if (auto p = pending_by_host_.find(h->host); p != pending_by_host_.end() && --p->second == 0)
    pending_by_host_.erase(p);
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

void Listener::on_handshake_frame(Handshake* h, std::string_view p) {
  std::string out, err;
  // It spoke in time: the whole handshake now has handshake_timeout_ms.
  if (h->hs->steps() == 0) arm_handshake_timer(h, uint64_t(cfg_.handshake_timeout_ms));
  auto fp = [&] { return key_fingerprint(h->hs->peer_key()); };
  auto refuse = [&](const std::string& why, const std::string& tell) {
    refusal("refused " + h->from + (h->claimed.empty() ? "" : " ('" + printable(h->claimed) + "')") + ": " + why);
    if (h->s) h->s->send(LinkResponder::refuse(tell));
    finish_handshake(h, false);
  };
  switch (h->hs->on_frame(p, out, err)) {
    case LinkResponder::Step::send:
      h->s->send(out);
      return;
    case LinkResponder::Step::refuse:
      // Before the peer's key is known: the log says it (rate-limited); the
      // audit log records decisions about keys, not noise on the port.
      refusal("refused " + h->from + ": " + err);
      h->s->send(out);
      return finish_handshake(h, false);
    case LinkResponder::Step::failed:
      refusal("handshake from " + h->from + " failed: " + err);
      return finish_handshake(h, false);
    case LinkResponder::Step::hello:
      break;
  }
  const Hello& hello = h->hs->hello();
  h->claimed = hello.node;
  PeerVerdict v = trust_.check_peer(hello.node, h->hs->peer_key(), hello.cert, static_cast<int64_t>(wall_time()));
  if (v.ok && !hello.to.empty() && hello.to != cfg_.node) {
    v.ok = false;
    v.reason = "it wants node '" + printable(hello.to) + "', this is " + cfg_.node;
  }
  Endpoint addr;
  bool learn = v.ok && !cfg_.peers.count(hello.node);
  if (learn && !parse_endpoint(hello.addr, addr, err)) {
    v.ok = false;
    v.reason = "bad address '" + printable(hello.addr) + "': " + err;
  }
  // A node listening on every address says 0.0.0.0 (or ::): reach it at
  // the address it came from.
  if (learn && v.ok && (addr.host == "0.0.0.0" || addr.host == "::")) {
    Endpoint src;
    std::string perr;
    if (parse_endpoint(h->from, src, perr)) addr.host = src.host;
  }
  // Replayed first messages each cost a process until their deadline: a
  // few may wait for their tickets at once, not more.
  if (v.ok) {
    int waiting = 0;
    for (auto& j : joining_) waiting += j->peer == hello.node && !j->exited;
    if (waiting >= 4) {
      v.ok = false;
      v.reason = "too many handshakes in progress for " + hello.node;
    }
  }
  if (!v.ok) {
    // A refusal is recorded now; an allowed link once its ticket arrives
    // (promote), so a replayed message 1 leaves no "allowed" line.
    // Not synced: a refusal allows nothing, and anyone can make keys.
    audit_->record({{"what", "link"},
                    {"peer", printable(hello.node)},
                    {"key", fp()},
                    {"address", h->from},
                    {"verdict", "refused"},
                    {"reason", v.reason}},
                   false);
    return refuse(v.reason + " (key " + fp() + ")", v.reason);
  }
  std::string peer = hello.node;
  uint16_t port = 0;
  ServerProc* sp = nullptr;
  if (!start_queue_server(peer, *h->hs, out, port, sp, err)) {
    log_error("cannot serve " + peer + ": " + err);
    if (h->s) h->s->send(LinkResponder::refuse("no queue-server available"));
    return finish_handshake(h, false);
  }
  sp->learn_addr = learn;
  sp->addr = addr;
  sp->from = h->from;
  sp->key_fp = fp();
  sp->by_cert = v.by_cert;
  sp->cert_groups = v.groups;
  log_info(peer + " (" + h->from + ", key " + fp() + (v.by_cert ? ", certificate" : "") +
           ") passed the handshake; QueueServer_" + peer + " on port " + std::to_string(port));
  h->s->send(out);
  finish_handshake(h, true);
  // Step 5 early: a pinned peer's reverse link can come up while its
  // forward link is still joining (replies need it soon). Starting a client
  // towards a configured address acts on nothing the message claims.
  if (cfg_.peers.count(peer) && !stopping_) ensure_client(peer);
}

void Listener::on_control_connection(int status) {
  if (status != 0 || stopping_) return;
  Stream* s = Stream::pipe(loop_);
  if (!s) return;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&control_server_), s->stream()) != 0) {
    s->close();
    return;
  }
  uint64_t id = ++next_tool_;
  tools_[id] = s;
  s->on_frame = [this, id](std::string_view p) { on_tool_msg(id, p); };
  s->on_close = [this, id](const std::string&) {
    tools_.erase(id);
    for (auto it = pending_.begin(); it != pending_.end();)
      it = it->second.tool == id ? pending_.erase(it) : std::next(it);
  };
  s->start(cfg_.max_frame + kControlSlack);
}

void Listener::shutdown(const std::string& why) {
  if (stopping_) return;
  stopping_ = true;
  log_info("stopping (" + why + "): ending " + std::to_string(live_children_) + " children");
  if (node_open_) uv_close(reinterpret_cast<uv_handle_t*>(&node_server_), nullptr);
  if (control_open_) uv_close(reinterpret_cast<uv_handle_t*>(&control_server_), nullptr);
  node_open_ = control_open_ = false;
  // Only ours to remove: a listener that failed to start must not take
  // the socket away from the one that is running.
  if (control_bound_) unlink(cfg_.control_socket().c_str());
  while (!handshakes_.empty()) finish_handshake(handshakes_.begin()->first, false);
  for (auto& [id, s] : std::unordered_map<uint64_t, Stream*>(tools_)) s->close();
  for (auto& [k, c] : clients_) {
    c->restart_timer.reset();
    if (c->child) c->child->kill(SIGTERM), c->child->kill(SIGCONT);
  }
  for (auto& [k, s] : servers_)
    if (s->child) s->child->kill(SIGTERM), s->child->kill(SIGCONT);
  for (auto& s : joining_)
    if (s->child) s->child->kill(SIGTERM), s->child->kill(SIGCONT);
  if (jobs_) jobs_->stop_all();
  // Children that ignore SIGTERM get SIGKILL: nothing is left behind.
  kill_timer_ = std::make_unique<Timer>(loop_);
  // Jobs get their configured grace; the link processes need far less.
  kill_timer_->start(uint64_t(std::max(5.0, cfg_.job_kill_grace_s + 1) * 1000), [this] {
    for (auto& [k, c] : clients_)
      if (c->child) c->child->kill(SIGKILL);
    for (auto& [k, s] : servers_)
      if (s->child) s->child->kill(SIGKILL);
    for (auto& s : joining_)
      if (s->child) s->child->kill(SIGKILL);
    if (jobs_) jobs_->kill_all();
    for (Child* r : retiring_) r->kill(SIGKILL);
  });
  maybe_finish_shutdown();
}

void Listener::maybe_finish_shutdown() {
  if (!stopping_ || stopped_ || live_children_ > 0 || (jobs_ && jobs_->running() > 0)) return;
  stopped_ = true;
  kill_timer_.reset();
  retire_timer_.reset();
  for (auto& [k, c] : clients_)
    if (c->pipe) c->pipe->discard();
  for (auto& [k, s] : servers_)
    if (s->pipe) s->pipe->discard();
  for (auto& r : retired_servers_)
    if (r->pipe) r->pipe->discard();
  for (auto& r : joining_)
    if (r->pipe) r->pipe->discard();
  joining_.clear();
  clients_.clear();
  servers_.clear();
  retired_servers_.clear();
  sig_term_.reset();
  sig_int_.reset();
  sig_hup_.reset();
  refusal_timer_.reset();
  log_info("stopped");
}

int run_listener(const ListenerOptions& o) {
  Level lv = Level::info;
  parse_level(o.cfg.log_level, lv);
  log_init({"jsd-listener", lv, o.cfg.syslog});
  // Descriptors are what a flood exhausts first: take all we may have.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) log_debug("cannot raise the descriptor limit");
  }
  std::vector<std::string> errors;
  Trust trust;
  if (!load_trust(o.cfg, trust, errors)) {
    for (auto& e : errors) log_error(e);
    return 1;
  }
  return with_loop([&](uv_loop_t* loop) {
    Listener l(loop, o, trust);
    int rc = l.start();
    if (rc == 0) {
      uv_run(loop, UV_RUN_DEFAULT);
      rc = l.exit_code();
    } else {
      l.shutdown("start-up failed");
      uv_run(loop, UV_RUN_DEFAULT);
    }
    return rc;
  });
}

}  // namespace jsd
