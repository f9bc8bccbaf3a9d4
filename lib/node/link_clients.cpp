#include "link_clients.h"

#include <algorithm>
#include <csignal>

#include "exit_codes.h"
#include "keepalive.h"
#include "link_watch.h"
#include "log.h"
#include "pipe_msg.h"

namespace jsd {

LinkClients::~LinkClients() { clear(); }

void LinkClients::send(const std::string& key, const EventView& ev) {
  Proc& c = ensure_proc(key);
  // An idle client sleeps up to idle_heartbeat_ms; from now on it is busy
  // and must be heard from every heartbeat_ms (watch()).
  if (c.queue.empty()) {
    c.heard_ms = now_ms();
    watch_soon();
  }
  uint64_t seq = ++c.next_seq;
  auto& slot = c.queue.emplace_back(seq, std::string());
  encode_data_into(slot.second, seq, ev);
  c.queued_bytes += slot.second.size();
  c.used_ms = now_ms();
  if (c.idle) return wake(c);  // its new client starts from the queue
  if (c.pipe) c.pipe->send(slot.second);
}

void LinkClients::ensure(const std::string& key) { wake(ensure_proc(key)); }

void LinkClients::wake(Proc& c) {
  c.removed = false;  // back in the configuration
  if (!c.idle || stopping_) return;
  c.idle = false;
  c.used_ms = now_ms();
  spawn(c);
}

namespace {

uint64_t event_id_of(std::string_view data_msg) {
  uint64_t seq = 0;
  EventView ev;
  std::string err;
  return decode_data(data_msg, seq, ev, err) ? ev.id : 0;
}

}  // namespace

// Only the client knows whether it put an item on a link; it is asked, and
// the item leaves our queue only when it says "dropped", so that neither it
// nor a client started after it ever sends the item.
void LinkClients::withdraw(const std::string& key, uint64_t event_id, std::function<void(bool)> done) {
  auto pit = procs_.find(key);
  if (pit == procs_.end()) return done(false);
  Proc& c = *pit->second;
  auto it = std::find_if(c.queue.begin(), c.queue.end(),
                         [event_id](const auto& item) { return event_id_of(item.second) == event_id; });
  // Acknowledged by the peer already, or handed to a client that is gone.
  if (it == c.queue.end() || it->first <= c.maybe_linked_upto) return done(false);
  uint64_t seq = it->first;
  if (!c.pipe) {  // restarting: our queue is the truth, and nobody holds the item but us
    c.queued_bytes -= it->second.size();
    c.queue.erase(it);
    return done(true);
  }
  c.withdrawing.emplace(seq, std::move(done));
  watch_soon();
  PipeMsg m;
  m.type = PipeType::withdraw;
  m.seq = seq;
  c.pipe->send(encode_pipe(m));
}

void LinkClients::on_withdrawn(Proc& c, uint64_t seq, bool dropped) {
  auto [from, to] = c.withdrawing.equal_range(seq);
  if (from == to) return;  // answered already (a second withdraw of the same item)
  std::vector<std::function<void(bool)>> waiting;
  for (auto it = from; it != to; ++it) waiting.push_back(std::move(it->second));
  c.withdrawing.erase(from, to);
  if (dropped) {
    auto it = std::find_if(c.queue.begin(), c.queue.end(), [seq](const auto& item) { return item.first == seq; });
    if (it != c.queue.end()) {
      c.queued_bytes -= it->second.size();
      c.queue.erase(it);
    }
  }
  for (auto& done : waiting) done(dropped);
  if (c.removed && c.withdrawing.empty() && c.child && !c.ending) {
    c.ending = true;
    c.child->kill(SIGTERM);
  }
}

// A client's pipe is gone: what it was handed may be on a link now, and the
// answers it owed never come.
void LinkClients::pipe_lost(Proc& c) {
  c.maybe_linked_upto = std::max(c.maybe_linked_upto, c.next_seq);
  auto waiting = std::move(c.withdrawing);
  c.withdrawing.clear();
  for (auto& [seq, done] : waiting) done(false);
}

LinkClients::Proc& LinkClients::ensure_proc(const std::string& key) {
  auto it = procs_.find(key);
  if (it != procs_.end()) return *it->second;
  auto c = std::make_unique<Proc>();
  c->key = key;
  c->since = wall_time();
  c->used_ms = now_ms();
  auto& ref = *c;
  procs_[key] = std::move(c);
  spawn(ref);
  return ref;
}

size_t LinkClients::backlog(const std::string& key) const {
  auto it = procs_.find(key);
  return it == procs_.end() ? 0 : it->second->queued_bytes;
}

void LinkClients::spawn(Proc& c) {
  if (stopping_ || c.spawn_due) return;
  c.spawn_due = true;
  // A client with events to send goes before those that only form a link.
  if (c.queue.empty())
    spawn_queue_.push_back(c.key);
  else
    spawn_queue_.push_front(c.key);
  if (!spawn_timer_) spawn_timer_ = std::make_unique<Timer>(loop_);
  // A timer of 0 runs in the next turn's timer phase: after every callback
  // of the I/O this turn found ready (handshakes included).
  if (!spawn_timer_->active()) spawn_timer_->start(0, [this] { spawn_some(); });
}

void LinkClients::spawn_some() {
  for (int n = 0; n < kSpawnsPerTurn && !spawn_queue_.empty() && forming_ < window_.width();) {
    std::string key = std::move(spawn_queue_.front());
    spawn_queue_.pop_front();
    auto it = procs_.find(key);
    if (it == procs_.end()) continue;
    Proc& c = *it->second;
    c.spawn_due = false;
    // Started meanwhile, ended for being idle, or left the configuration.
    if (stopping_ || c.child || c.idle) continue;
    start_client(c);
    ++n;
  }
  // Full: formed() or the watch's kFormingMs calls again.
  if (!spawn_queue_.empty() && forming_ < window_.width()) spawn_timer_->start(0, [this] { spawn_some(); });
}

void LinkClients::formed(Proc& c, bool ok) {
  if (!c.forming) return;
  c.forming = false;
  --forming_;
  window_.ended(ok, now_ms() - c.started_ms);
  if (!spawn_queue_.empty() && !stopping_ && spawn_timer_ && !spawn_timer_->active())
    spawn_timer_->start(0, [this] { spawn_some(); });
}

void LinkClients::start_client(Proc& c) {
  if (stopping_) return;
  c.started_ms = now_ms();  // also for a failed start: the backoff needs it
  std::string err;
  c.pipe = Stream::pipe(loop_);
  std::vector<std::string> argv = {"QueueClient_" + c.key};
  if (!cfg_.path.empty()) argv.insert(argv.end(), {"--config", cfg_.path});
  if (!cfg_.running_path.empty()) argv.insert(argv.end(), {"--running-config", cfg_.running_path});
  char inst[32];
  snprintf(inst, sizeof inst, "%016llx", static_cast<unsigned long long>(instance_));
  argv.insert(argv.end(), {"--instance", inst});
  if (const Endpoint* addr = peers_.learnt_address(c.key)) argv.insert(argv.end(), {"--address", addr->str()});
  argv.push_back(c.key);
  SpawnSpec spec;
  spec.file = bin_dir_ + "/jsd-client";
  spec.argv = argv;
  spec.fds.push_back(ChildFd{-1, c.pipe});
  Child* child = spawn_.start(LinkKind::client, spec, err);
  std::string key = c.key;
  if (!child) {
    log_error("cannot start " + err);
    c.pipe->discard();
    c.pipe = nullptr;
    c.state = LinkState::down;
    c.detail = err;
    on_exit(key, nullptr, kExitJobNotStarted, 0);
    return;
  }
  ++live_;
  c.child = child;
  c.state = LinkState::connecting;
  c.forming = true;
  ++forming_;
  child->on_exit = [this, key, child](int64_t status, int sig) { on_exit(key, child, status, sig); };
  Stream* pipe = c.pipe;
  pipe->on_frame = [this, key](std::string_view p) {
    auto it = procs_.find(key);
    if (it == procs_.end()) return;
    it->second->heard_ms = now_ms();
    on_msg(*it->second, p);
  };
  pipe->on_close = [this, key, pipe](const std::string&) {
    auto it = procs_.find(key);
    if (it != procs_.end() && it->second->pipe == pipe) {
      it->second->pipe = nullptr;
      pipe_lost(*it->second);
    }
  };
  pipe->start(cfg_.max_frame + kPipeSlack);
  c.heard_ms = now_ms();
  watch_soon();  // forming: its slot is given back after kFormingMs at the latest
  log_debug("started QueueClient_" + key + " (pid " + std::to_string(child->pid()) + ")");
  // A new client starts from everything not yet acknowledged, in order.
  for (auto& [seq, payload] : c.queue) pipe->send(payload);
}

void LinkClients::kick(const std::string& peer) {
  auto it = procs_.find(peers_.client_key_for(peer));
  if (it == procs_.end() || !it->second->pipe || it->second->state == LinkState::up) return;
  PipeMsg m;
  m.type = PipeType::retry;
  it->second->pipe->send(encode_pipe(m));
}

void LinkClients::restart(const std::string& key) {
  auto c = procs_.find(key);
  if (c != procs_.end() && c->second->child) c->second->child->kill(SIGTERM);
}

void LinkClients::remove(const std::string& key) {
  auto it = procs_.find(key);
  if (it == procs_.end()) return;
  Proc& c = *it->second;
  c.removed = true;
  c.restart_timer.reset();
  if (!c.child) {
    c.idle = true;
    return;
  }
  if (c.withdrawing.empty() && !c.ending) {
    c.ending = true;
    c.child->kill(SIGTERM);
    c.child->kill(SIGCONT);
  }
}

void LinkClients::on_msg(Proc& c, std::string_view p) {
  PipeMsg m;
  std::string err;
  if (!decode_pipe(p, m, err)) {
    log_error("bad message from QueueClient_" + c.key + ": " + err);
    return;
  }
  if (m.type == PipeType::ack) {
    c.used_ms = now_ms();
    while (!c.queue.empty() && c.queue.front().first <= m.seq) {
      c.queued_bytes -= c.queue.front().second.size();
      c.queue.pop_front();
    }
    return;
  }
  if (m.type == PipeType::withdrawn) return on_withdrawn(c, m.seq, m.dropped);
  if (m.type == PipeType::too_big) {
    auto it = std::find_if(c.queue.begin(), c.queue.end(), [&m](const auto& item) { return item.first == m.seq; });
    if (it == c.queue.end()) return;
    uint64_t event_id = event_id_of(it->second);
    c.queued_bytes -= it->second.size();
    c.queue.erase(it);
    return events_.too_big(c.key, event_id, m.detail);
  }
  if (m.type == PipeType::state) {
    if (c.state != m.state) c.since = wall_time();
    c.state = m.state;
    c.detail = m.detail;
    if (!m.peer.empty()) c.remote_node = m.peer;
    if (m.state != LinkState::starting && m.state != LinkState::connecting) formed(c, m.state == LinkState::up);
    if (m.state != LinkState::up) watch_soon();  // it says it is alive every heartbeat_ms again
    events_.link_state(c.key, m.state, m.detail);
  }
}

void LinkClients::on_exit(const std::string& key, Child* child, int64_t status, int sig) {
  if (child) --live_;
  auto it = procs_.find(key);
  if (it != procs_.end() && it->second->child == child) formed(*it->second, false);
  if (it == procs_.end() || (child && it->second->child != child) || stopping_) {
    if (it != procs_.end() && it->second->child == child) it->second->child = nullptr;
    return events_.child_gone();
  }
  Proc& c = *it->second;
  c.child = nullptr;
  if (c.pipe) {
    c.pipe->discard();
    c.pipe = nullptr;
  }
  if (child) pipe_lost(c);
  if (c.removed) {
    c.ending = false;
    c.idle = true;
    c.state = LinkState::down;
    c.detail = "not a peer any more";
    log_info("QueueClient_" + key + " ended: " + key + " left the configuration (" + std::to_string(c.queue.size()) +
             " events kept)");
    return;
  }
  if (c.ending) {
    c.ending = false;
    if (c.queue.empty()) {
      // Its sequence numbers go on from here when it is needed again (the
      // peer drops what it has seen by them), so the entry stays.
      c.idle = true;
      c.state = LinkState::down;
      c.detail = "idle: no client running";
      c.since = wall_time();
      log_info("QueueClient_" + key + " ended: nothing queued for " + std::to_string(cfg_.idle_client_s) +
               " s (idle_client_s)");
      return;
    }
  }
  std::string how = sig ? "killed by signal " + std::to_string(sig) : "exited with status " + std::to_string(status);
  // Restart at once the first time; back off if it keeps dying young.
  uint64_t lived = now_ms() - c.started_ms;
  if (lived > 10000) c.restart_delay_ms = 0;
  uint64_t delay = c.restart_delay_ms;
  c.restart_delay_ms = std::min<uint64_t>(delay ? delay * 2 : 100, 5000);
  c.restarts++;
  c.state = LinkState::restarting;
  c.since = wall_time();
  log_warn("QueueClient_" + key + " " + how + "; restarting in " + std::to_string(delay) + " ms (" +
           std::to_string(c.queue.size()) + " events kept)");
  if (!c.restart_timer) c.restart_timer = std::make_unique<Timer>(loop_);
  c.restart_timer->start(delay, [this, key] {
    auto i = procs_.find(key);
    if (i != procs_.end() && !i->second->child) spawn(*i->second);
  });
}

// A client says it is alive every heartbeat_ms while its link is busy or
// not up; while it is up and idle, it says nothing where the kernel
// watches the link (keepalive.h), and every idle_heartbeat_ms otherwise. One that
// stays silent for twice that (plus dead_after_ms; link_watch.h) is stopped
// or its loop hung: it holds its link and our queue hostage, so it is
// killed, and on_exit() starts a new one from our queue. A listener that
// was itself stalled does not blame its children: its tick, late, reads
// the pipes first (Deadline), and a pipe we do not read excuses its child.
// While every link is up and idle the watch ticks every idle_heartbeat_ms
// (issue 20: not every heartbeat_ms over every child): a hung idle client
// is then replaced within 2 * (idle_heartbeat_ms + dead_after_ms) +
// idle_heartbeat_ms, a busy one within 2 * dead_after_ms + heartbeat_ms.
void LinkClients::watch() {
  if (stopping_) return;
  const WatchTimes t = watch_times(cfg_);
  uint64_t now = now_ms();
  bool soon = false, any = false;
  for (auto& [k, c] : procs_) {
    // A handshake that has not ended in kFormingMs (a peer that does not
    // answer) gives its slot to the next link; its client goes on trying.
    if (c->forming && now - c->started_ms >= kFormingMs) formed(*c, false);
    // Nothing queued or taken back, and no use for idle_client_s: a client
    // nobody needs (to a host that is down, say) does not live on, unless
    // the configuration asks for a standing link.
    if (c->child && !c->ending && c->queue.empty() && c->withdrawing.empty() &&
        now - c->used_ms >= uint64_t(cfg_.idle_client_s) * 1000 &&
        std::find(cfg_.connect_at_startup.begin(), cfg_.connect_at_startup.end(), k) == cfg_.connect_at_startup.end()) {
      c->ending = true;
      c->child->kill(SIGTERM);
      continue;
    }
    if (!c->child) continue;
    any = true;
    bool idle = c->state == LinkState::up && c->queue.empty() && c->withdrawing.empty();
    soon = soon || !idle || c->forming;
    if (!c->pipe || c->pipe->paused()) {
      c->heard_ms = now;
      continue;
    }
    // The kernel watches an idle link and its client sleeps (keepalive.h):
    // one that hangs is found once it is used again (send() starts the
    // busy count), within busy_limit.
    if (idle && kernel_keepalive(cfg_)) continue;
    if (!silent_too_long(now, c->heard_ms, idle ? t.idle_limit : t.busy_limit)) continue;
    log_warn("QueueClient_" + k + " (pid " + std::to_string(c->child->pid()) + ") has not answered for " +
             std::to_string(now - c->heard_ms) + " ms: replacing it");
    c->heard_ms = now;
    c->child->kill(SIGKILL);
  }
  // No child: the next start_client() arms it again.
  if (any) arm_watch(soon ? t.fine : t.coarse);
}

void LinkClients::arm_watch(uint64_t period) {
  if (!watch_) watch_ = std::make_unique<Deadline>(loop_);
  uint64_t d = watch_delay(uv_now(loop_), period);
  watch_due_ = uv_now(loop_) + d;
  watch_->start(d, [this] { watch(); });
}

void LinkClients::watch_soon() {
  if (stopping_) return;
  uint64_t fine = watch_times(cfg_).fine;
  if (watch_ && watch_->active() && watch_due_ <= uv_now(loop_) + fine) return;
  arm_watch(fine);
}

nlohmann::json LinkClients::links_json() const {
  nlohmann::json links = nlohmann::json::array();
  for (auto& [k, c] : procs_)
    if (!c->removed || c->child)
      links.push_back({{"peer", c->remote_node.empty() ? k : c->remote_node},
                       {"direction", "out"},
                       {"process", "QueueClient_" + k},
                       {"pid", c->child ? c->child->pid() : 0},
                       {"state", link_state_name(c->state)},
                       {"detail", c->detail},
                       {"queued", c->queue.size()},
                       {"queued_bytes", c->queued_bytes},
                       {"since", iso_time(c->since)},
                       {"restarts", c->restarts}});
  return links;
}

void LinkClients::stop() {
  stopping_ = true;
  watch_.reset();
  for (auto& [k, c] : procs_) {
    c->restart_timer.reset();
    if (c->child) c->child->kill(SIGTERM), c->child->kill(SIGCONT);
  }
}

void LinkClients::kill() {
  for (auto& [k, c] : procs_)
    if (c->child) c->child->kill(SIGKILL);
}

void LinkClients::clear() {
  watch_.reset();
  spawn_timer_.reset();
  spawn_queue_.clear();
  for (auto& [k, c] : procs_)
    if (c->pipe) c->pipe->discard();
  procs_.clear();
}

}  // namespace jsd
