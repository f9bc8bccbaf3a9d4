#include "link_clients.h"

#include <algorithm>
#include <csignal>

#include "exit_codes.h"
#include "log.h"
#include "pipe_msg.h"

namespace jsd {

LinkClients::~LinkClients() { clear(); }

void LinkClients::send(const std::string& key, const EventView& ev) {
  Proc& c = ensure_proc(key);
  uint64_t seq = ++c.next_seq;
  auto& slot = c.queue.emplace_back(seq, std::string());
  encode_data_into(slot.second, seq, ev);
  c.queued_bytes += slot.second.size();
  if (c.pipe) c.pipe->send(slot.second);
}

void LinkClients::ensure(const std::string& key) { ensure_proc(key); }

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
  if (stopping_) return;
  c.started_ms = now_ms();  // also for a failed start: the backoff needs it
  std::string err;
  c.pipe = Stream::pipe(loop_);
  std::vector<std::string> argv = {"QueueClient_" + c.key};
  if (!cfg_.path.empty()) argv.insert(argv.end(), {"--config", cfg_.path});
  char inst[32];
  snprintf(inst, sizeof inst, "%016llx", static_cast<unsigned long long>(instance_));
  argv.insert(argv.end(), {"--instance", inst});
  if (const Endpoint* addr = peers_.learnt_address(c.key)) argv.insert(argv.end(), {"--address", addr->str()});
  argv.push_back(c.key);
  SpawnSpec spec;
  spec.file = bin_dir_ + "/jsd-client";
  spec.argv = argv;
  spec.fds.push_back(ChildFd{-1, c.pipe});
  Child* child = Child::spawn(loop_, spec, err);
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
  child->on_exit = [this, key, child](int64_t status, int sig) { on_exit(key, child, status, sig); };
  Stream* pipe = c.pipe;
  pipe->on_frame = [this, key](std::string_view p) {
    auto it = procs_.find(key);
    if (it != procs_.end()) on_msg(*it->second, p);
  };
  pipe->on_close = [this, key, pipe](const std::string&) {
    auto it = procs_.find(key);
    if (it != procs_.end() && it->second->pipe == pipe) {
      it->second->pipe = nullptr;
      pipe_lost(*it->second);
    }
  };
  pipe->start(cfg_.max_frame + kPipeSlack);
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

void LinkClients::on_msg(Proc& c, std::string_view p) {
  PipeMsg m;
  std::string err;
  if (!decode_pipe(p, m, err)) {
    log_error("bad message from QueueClient_" + c.key + ": " + err);
    return;
  }
  if (m.type == PipeType::ack) {
    while (!c.queue.empty() && c.queue.front().first <= m.seq) {
      c.queued_bytes -= c.queue.front().second.size();
      c.queue.pop_front();
    }
    return;
  }
  if (m.type == PipeType::withdrawn) return on_withdrawn(c, m.seq, m.dropped);
  if (m.type == PipeType::state) {
    if (c.state != m.state) c.since = wall_time();
    c.state = m.state;
    c.detail = m.detail;
    if (!m.peer.empty()) c.remote_node = m.peer;
    events_.link_state(c.key, m.state, m.detail);
  }
}

void LinkClients::on_exit(const std::string& key, Child* child, int64_t status, int sig) {
  if (child) --live_;
  auto it = procs_.find(key);
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

nlohmann::json LinkClients::links_json() const {
  nlohmann::json links = nlohmann::json::array();
  for (auto& [k, c] : procs_)
    links.push_back({{"peer", c->remote_node.empty() ? k : c->remote_node},
                     {"direction", "out"},
                     {"process", "QueueClient_" + k},
                     {"pid", c->child ? c->child->pid() : 0},
                     {"state", link_state_name(c->state)},
                     {"detail", c->detail},
                     {"queued", c->queue.size()},
                     {"since", iso_time(c->since)},
                     {"restarts", c->restarts}});
  return links;
}

void LinkClients::stop() {
  stopping_ = true;
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
  for (auto& [k, c] : procs_)
    if (c->pipe) c->pipe->discard();
  procs_.clear();
}

}  // namespace jsd
