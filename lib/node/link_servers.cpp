#include "link_servers.h"

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include "keepalive.h"
#include "link_watch.h"
#include "log.h"
#include "pipe_msg.h"
#include "router.h"

namespace jsd {

LinkServers::~LinkServers() { clear(); }

int LinkServers::joining(const std::string& peer) const {
  int n = 0;
  for (auto& j : joining_) n += j->peer == peer && !j->exited;
  return n;
}

bool LinkServers::start(const std::string& peer, LinkResponder& hs, LinkClaim claim, std::string& accept,
                        uint16_t& port, std::string& err) {
  int fd = bind_free_port(cfg_.listen.host, cfg_.port_min, cfg_.port_max, port, err);
  if (fd < 0) return false;
  // The last handshake message carries the port; the transport keys exist
  // once it is written.
  if (!hs.accept(port, accept, err, cfg_.max_frame)) {
    ::close(fd);
    return false;
  }
  SessionKeys keys = hs.take_keys();
  Stream* pipe = Stream::pipe(loop_);
  std::vector<std::string> argv = {"QueueServer_" + peer};
  if (!cfg_.path.empty()) argv.insert(argv.end(), {"--config", cfg_.path});
  if (!cfg_.running_path.empty()) argv.insert(argv.end(), {"--running-config", cfg_.running_path});
  argv.push_back(peer);
  SpawnSpec spec;
  spec.file = bin_dir_ + "/jsd-queue-server";
  spec.argv = argv;
  spec.fds.push_back(ChildFd{fd, nullptr});
  spec.fds.push_back(ChildFd{-1, pipe});
  Child* child = spawn_.start(LinkKind::server, spec, err);
  // The child has its own copy of the listening socket now (or failed).
  ::close(fd);
  if (!child) {
    keys.wipe();
    pipe->discard();
    return false;
  }
  ++live_;
  auto s = std::make_unique<Proc>();
  Proc* sp = s.get();
  sp->peer = peer;
  sp->child = child;
  sp->pipe = pipe;
  sp->port = port;
  sp->since = wall_time();
  sp->heard_ms = now_ms();
  sp->claim = std::move(claim);
  joining_.push_back(std::move(s));
  child->on_exit = [this, peer, sp, child](int64_t status, int sig) {
    --live_;
    retiring_.erase(child);
    if (retiring_.empty() && retire_timer_) retire_timer_->stop();
    if (!stopping_ && sp->state != LinkState::retired && sp->joined)
      log_info("QueueServer_" + peer +
               (sig ? " killed by signal " + std::to_string(sig) : " exited (" + std::to_string(status) + ")"));
    sp->child = nullptr;
    sp->exited = true;
    if (sp->pipe) sp->pipe->resume();  // read what it left to the end
    drop_if_done(sp);
    events_.child_gone();
  };
  pipe->on_frame = [this, sp](std::string_view p) {
    sp->heard_ms = now_ms();
    on_msg(sp, p);
  };
  pipe->on_close = [this, sp](const std::string&) {
    sp->pipe = nullptr;
    drop_if_done(sp);
    events_.child_gone();
  };
  pipe->start(cfg_.max_frame + kPipeSlack);
  if (!watch_ || !watch_->active()) arm_watch();
  std::string enc = encode_session(keys);
  keys.wipe();
  pipe->send(enc);
  sodium_memzero(enc.data(), enc.size());
  return true;
}

// The peer's ticket reached a joining queue-server: it is the peer's link
// now. A peer that reconnects replaces its old queue-server, whose pipe is
// read to the end first (pump()).
bool LinkServers::promote(Proc* sp) {
  auto j = std::find_if(joining_.begin(), joining_.end(), [sp](auto& p) { return p.get() == sp; });
  if (j == joining_.end()) return false;
  if (!events_.joined(sp->peer, sp->claim)) {
    // Not on record, not allowed: the joining queue-server goes.
    if (sp->child) retire(sp->child);
    return false;
  }
  std::unique_ptr<Proc> s = std::move(*j);
  joining_.erase(j);
  sp->joined = true;
  if (auto it = current_.find(sp->peer); it != current_.end()) {
    std::unique_ptr<Proc> old = std::move(it->second);
    current_.erase(it);
    // A peer that reconnects comes from the host it came from before. A
    // live link replaced from another host is the one sign that two nodes
    // hold this peer's key (a stolen key): a warning naming both.
    Endpoint was, now;
    std::string perr;
    if (old->state == LinkState::up && parse_endpoint(old->claim.from, was, perr) &&
        parse_endpoint(sp->claim.from, now, perr) && was.host != now.host)
      log_warn("two live holders of " + sp->peer + "'s key: a link from " + sp->claim.from +
               " replaces the live one from " + old->claim.from + " (a stolen key? see jsd(7))");
    log_info("replacing QueueServer_" + sp->peer + " (pid " + std::to_string(old->child ? old->child->pid() : 0) + ")");
    if (old->child) retire(old->child);
    // Read to the end (unless it waits behind an older one: pump()).
    if (old->pipe && !old->held) old->pipe->resume();
    old->state = LinkState::retired;
    retired_.push_back(std::move(old));
  }
  current_[sp->peer] = std::move(s);
  // Events from the new one wait until the old ones' are all in. Frames
  // already read with "up" are still handed out after pause(): they are
  // held, not delivered, so none overtakes the old ones'.
  pump(sp->peer);
  return true;
}

// A queue-server's entry goes when the process has exited and its pipe is
// read to the end; then a successor held back behind it may read.
void LinkServers::drop_if_done(Proc* sp) {
  if (!sp->exited || sp->pipe) return;
  for (auto j = joining_.begin(); j != joining_.end(); ++j)
    if (j->get() == sp) {
      joining_.erase(j);  // its peer never came (a replayed or abandoned handshake)
      return;
    }
  pump(sp->peer);
}

// A peer's queue-servers deliver in the order they were promoted: the
// retired ones (oldest first), then the current one. Each waits (held,
// its pipe paused, what it already read kept aside) until every earlier one
// has been read to the end; what they acknowledged to the peer is in their
// pipes and must not be overtaken, nor lost. A server goes once it has
// exited, its pipe is at its end and nothing of it is held.
void LinkServers::pump(std::string peer) {  // by value: it may free the server that owns the name
  std::vector<DrainSource*> order;
  for (auto& r : retired_)
    if (r->peer == peer) order.push_back(r.get());
  if (auto cur = current_.find(peer); cur != current_.end()) order.push_back(cur->second.get());
  drain_in_order(order, [this](DrainSource* s, const std::string& msg) { on_msg(static_cast<Proc*>(s), msg); });
  auto done = [&](const std::unique_ptr<Proc>& s) {
    return s->peer == peer && s->exited && !s->pipe && !s->held && s->held_msgs.empty();
  };
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(), done), retired_.end());
  if (auto cur = current_.find(peer); cur != current_.end() && done(cur->second)) current_.erase(cur);
}

// A replaced queue-server may be hung or stopped (that is often why its
// peer reconnected): SIGUSR1 (it ends its link without saying this node
// stops), SIGCONT so a stopped one can act on it, and SIGKILL if it is
// still there after kRetireGraceMs. No process is left behind.
void LinkServers::retire(Child* c) {
  c->kill(SIGUSR1);
  c->kill(SIGCONT);
  retiring_.insert(c);
  if (!retire_timer_) retire_timer_ = std::make_unique<Timer>(loop_);
  if (!retire_timer_->active())
    retire_timer_->start(kRetireGraceMs, [this] {
      for (Child* r : retiring_) r->kill(SIGKILL);
    });
}

void LinkServers::retire_peer(const std::string& peer) {
  for (auto& j : joining_)
    if (j->peer == peer && j->child) retire(j->child);
  auto it = current_.find(peer);
  if (it == current_.end()) return;
  std::unique_ptr<Proc> old = std::move(it->second);
  current_.erase(it);
  if (old->child) retire(old->child);
  if (old->pipe && !old->held) old->pipe->resume();
  old->state = LinkState::retired;
  retired_.push_back(std::move(old));
  pump(peer);
}

void LinkServers::on_msg(Proc* s, std::string_view p) {
  PipeMsg m;
  std::string err;
  if (!decode_pipe(p, m, err)) {
    log_error("bad message from QueueServer_" + s->peer + ": " + err);
    return;
  }
  if (m.type == PipeType::state) {
    if (m.state == LinkState::up && !s->joined && !promote(s)) return;
    s->state = m.state;
    s->since = wall_time();
    s->instance = m.instance;
    // Step 5 of the link: the reverse direction, without being asked.
    if (m.state == LinkState::up && !stopping_) events_.link_up(s->peer);
    return;
  }
  if (m.type == PipeType::data) on_data(s, p);
}

void LinkServers::on_data(Proc* s, std::string_view p) {
  // Only the peer's link (its ticket arrived, it is on record) delivers.
  if (!s->joined) return log_error("event from QueueServer_" + s->peer + " before its link was up: dropped");
  if (s->held) {
    s->held_msgs.emplace_back(p);
    return;
  }
  EventView ev;
  uint64_t seq = 0;
  std::string err;
  if (!decode_data(p, seq, ev, err)) return log_error("bad event from QueueServer_" + s->peer + ": " + err);
  // The queue-server forwards the link's bytes unchanged; the sender's
  // instance came once, with "up".
  uint64_t tool = events_.delivered(s->peer, s->instance, seq, to_event(ev));
  // A tool that reads slower than this link brings: stop reading the link
  // (its queue-server then stops acknowledging, which stops the sender)
  // until the tool has caught up.
  if (!tool || !s->pipe || s->pipe->paused()) return;
  s->pipe->pause();
  if (!s->resume_timer) s->resume_timer = std::make_unique<Timer>(loop_);
  s->resume_timer->start(
      10,
      [this, s, tool] {
        if (events_.tool_backlog(tool) > Router::kToolLowWater) return;
        s->resume_timer->stop();
        if (s->pipe) s->pipe->resume();
      },
      10);
}

// A queue-server says it is alive at its peer's heartbeats. Where the
// kernel watches idle links (keepalive.h) an idle link has none, so a
// queue-server whose link is up is not judged here at all: one that hangs
// is found by its peer's client the next time it sends (no ack within
// dead_after_ms), whose new link retires it (retire(): SIGKILL after
// kRetireGraceMs) -- issue 20: no wake-up per idle link. Otherwise (or
// while it waits for its peer's link) one silent for
// twice idle_heartbeat_ms + dead_after_ms (stopped, or its loop hung) is
// killed: its peer links again to a new one, and what it acknowledged is in
// its pipe (read to the end). A pipe we are not reading (held behind an
// older one, or a slow tool) cannot show it alive, so it is excused; a
// listener that was itself stalled reads the pipes before a late tick
// judges anyone (Deadline).
void LinkServers::watch() {
  if (stopping_) return;
  // A queue-server is heard from at its peer's heartbeats: every
  // idle_heartbeat_ms on an idle link (queue_server.cpp), so the watch need
  // not look more often than that (issue 20: not every heartbeat_ms over
  // every child): a hung one is killed within 2 * (idle_heartbeat_ms +
  // dead_after_ms) + idle_heartbeat_ms.
  const WatchTimes t = watch_times(cfg_);
  uint64_t now = now_ms();
  auto check = [&](Proc* s) {
    if (!s->child || !s->pipe || s->held || s->pipe->paused() || retiring_.count(s->child)) {
      s->heard_ms = now;
      return;
    }
    if (!silent_too_long(now, s->heard_ms, t.idle_limit)) return;
    log_warn("QueueServer_" + s->peer + " (pid " + std::to_string(s->child->pid()) + ") has not answered for " +
             std::to_string(now - s->heard_ms) + " ms: ending it");
    s->heard_ms = now;
    s->child->kill(SIGKILL);
  };
  for (auto& s : joining_) check(s.get());
  const bool judge_up = !kernel_keepalive(cfg_);
  if (judge_up)
    for (auto& [k, s] : current_) check(s.get());
  // None left: the next start() arms it again.
  if (!joining_.empty() || (judge_up && !current_.empty())) arm_watch();
}

// On the grid of LinkClients' watch (link_watch.h): when both tick, they
// share a wake-up.
void LinkServers::arm_watch() {
  if (!watch_) watch_ = std::make_unique<Deadline>(loop_);
  watch_->start(watch_delay(uv_now(loop_), watch_times(cfg_).coarse), [this] { watch(); });
}

nlohmann::json LinkServers::links_json() const {
  nlohmann::json links = nlohmann::json::array();
  for (auto& [k, s] : current_)
    links.push_back({{"peer", k},
                     {"direction", "in"},
                     {"process", "QueueServer_" + k},
                     {"pid", s->child ? s->child->pid() : 0},
                     {"state", link_state_name(s->state)},
                     {"port", s->port},
                     {"queued", 0},
                     {"since", iso_time(s->since)}});
  return links;
}

void LinkServers::stop() {
  stopping_ = true;
  watch_.reset();
  for (auto* list : {&joining_, &retired_})
    for (auto& s : *list)
      if (s->child) s->child->kill(SIGTERM), s->child->kill(SIGCONT);
  for (auto& [k, s] : current_)
    if (s->child) s->child->kill(SIGTERM), s->child->kill(SIGCONT);
}

void LinkServers::kill() {
  for (auto* list : {&joining_, &retired_})
    for (auto& s : *list)
      if (s->child) s->child->kill(SIGKILL);
  for (auto& [k, s] : current_)
    if (s->child) s->child->kill(SIGKILL);
}

void LinkServers::clear() {
  retire_timer_.reset();
  watch_.reset();
  for (auto* list : {&joining_, &retired_})
    for (auto& s : *list)
      if (s->pipe) s->pipe->discard();
  for (auto& [k, s] : current_)
    if (s->pipe) s->pipe->discard();
  joining_.clear();
  retired_.clear();
  current_.clear();
}

}  // namespace jsd
