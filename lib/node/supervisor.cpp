// The listener's children: one jsd-client per remote node (started lazily or
// at start-up, restarted when it dies) and one jsd-queue-server per
// connected peer (replaced when the peer reconnects).
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include "listener_impl.h"
#include "log.h"

namespace jsd {

std::string Listener::client_key_for(const std::string& node) const {
  if (cfg_.peers.count(node)) return node;
  if (dynamic_peers_.count(node)) return node;
  return "";
}

Listener::ClientProc& Listener::ensure_client(const std::string& key) {
  auto it = clients_.find(key);
  if (it != clients_.end()) return *it->second;
  auto c = std::make_unique<ClientProc>();
  c->key = key;
  c->since = wall_time();
  auto& ref = *c;
  clients_[key] = std::move(c);
  spawn_client(ref);
  return ref;
}

void Listener::spawn_client(ClientProc& c) {
  if (stopping_) return;
  c.started_ms = now_ms();  // also for a failed start: the backoff needs it
  std::string err;
  c.pipe = Stream::pipe(loop_);
  std::vector<std::string> argv = {"QueueClient_" + c.key};
  if (!cfg_.path.empty()) {
    argv.push_back("--config");
    argv.push_back(cfg_.path);
  }
  char inst[32];
  snprintf(inst, sizeof inst, "%016llx", static_cast<unsigned long long>(instance_));
  argv.insert(argv.end(), {"--instance", inst});
  if (auto d = dynamic_peers_.find(c.key); d != dynamic_peers_.end() && !cfg_.peers.count(c.key))
    argv.insert(argv.end(), {"--address", d->second.str()});
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
    on_client_exit(key, nullptr, 127, 0);
    return;
  }
  ++live_children_;
  c.child = child;
  c.state = LinkState::connecting;
  child->on_exit = [this, key, child](int64_t status, int sig) { on_client_exit(key, child, status, sig); };
  Stream* pipe = c.pipe;
  pipe->on_frame = [this, key](std::string_view p) {
    auto it = clients_.find(key);
    if (it != clients_.end()) on_client_msg(*it->second, p);
  };
  pipe->on_close = [this, key, pipe](const std::string&) {
    auto it = clients_.find(key);
    if (it != clients_.end() && it->second->pipe == pipe) it->second->pipe = nullptr;
  };
  pipe->start(cfg_.max_frame + kPipeSlack);
  log_debug("started QueueClient_" + key + " (pid " + std::to_string(child->pid()) + ")");
  // A new client starts from everything not yet acknowledged, in order.
  for (auto& [seq, payload] : c.queue) pipe->send(payload);
}

// The peer linked to us, so it is up: our client to it, if it is waiting
// out a backoff, retries at once (a peer that restarted is linked back in
// milliseconds, not after the backoff).
void Listener::kick_client(const std::string& peer) {
  auto it = clients_.find(client_key_for(peer));
  if (it == clients_.end() || !it->second->pipe || it->second->state == LinkState::up) return;
  PipeMsg m;
  m.type = PipeType::retry;
  it->second->pipe->send(encode_pipe(m));
}

void Listener::on_client_msg(ClientProc& c, std::string_view p) {
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
  if (m.type == PipeType::state) {
    if (c.state != m.state) c.since = wall_time();
    c.state = m.state;
    c.detail = m.detail;
    if (!m.peer.empty()) c.remote_node = m.peer;
    notify_tools_about(c.key, m.state, m.detail);
  }
}

void Listener::on_client_exit(const std::string& key, Child* child, int64_t status, int sig) {
  if (child) --live_children_;
  auto it = clients_.find(key);
  if (it == clients_.end()) return maybe_finish_shutdown();
  ClientProc& c = *it->second;
  if (child && c.child != child) return maybe_finish_shutdown();
  c.child = nullptr;
  if (c.pipe) {
    c.pipe->discard();
    c.pipe = nullptr;
  }
  if (stopping_) return maybe_finish_shutdown();
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
    auto i = clients_.find(key);
    if (i != clients_.end() && !i->second->child) spawn_client(*i->second);
  });
}

bool Listener::start_queue_server(const std::string& peer, LinkResponder& hs, std::string& accept, uint16_t& port,
                                  ServerProc*& out, std::string& err) {
  std::string host = cfg_.listen.host;
  int fd = bind_free_port(host, cfg_.port_min, cfg_.port_max, port, err);
  if (fd < 0) return false;
  // The last handshake message carries the port; the transport keys exist
  // once it is written.
  if (!hs.accept(port, accept, err)) {
    ::close(fd);
    return false;
  }
  SessionKeys keys = hs.take_keys();
  Stream* pipe = Stream::pipe(loop_);
  std::vector<std::string> argv = {"QueueServer_" + peer};
  if (!cfg_.path.empty()) {
    argv.push_back("--config");
    argv.push_back(cfg_.path);
  }
  argv.push_back(peer);
  SpawnSpec spec;
  spec.file = bin_dir_ + "/jsd-queue-server";
  spec.argv = argv;
  spec.fds.push_back(ChildFd{fd, nullptr});
  spec.fds.push_back(ChildFd{-1, pipe});
  Child* child = Child::spawn(loop_, spec, err);
  // The child has its own copy of the listening socket now (or failed).
  ::close(fd);
  if (!child) {
    keys.wipe();
    pipe->discard();
    return false;
  }
  ++live_children_;
  auto s = std::make_unique<ServerProc>();
  ServerProc* sp = s.get();
  sp->peer = peer;
  sp->child = child;
  sp->pipe = pipe;
  sp->port = port;
  sp->since = wall_time();
  joining_.push_back(std::move(s));
  child->on_exit = [this, peer, sp, child](int64_t status, int sig) {
    --live_children_;
    retiring_.erase(child);
    if (retiring_.empty() && retire_timer_) retire_timer_->stop();
    if (!stopping_ && sp->state != LinkState::retired && sp->joined)
      log_info("QueueServer_" + peer +
               (sig ? " killed by signal " + std::to_string(sig) : " exited (" + std::to_string(status) + ")"));
    sp->child = nullptr;
    sp->exited = true;
    if (sp->pipe) sp->pipe->resume();  // read what it left to the end
    drop_server_if_done(sp);
    maybe_finish_shutdown();
  };
  pipe->on_frame = [this, sp](std::string_view p) { on_server_msg(sp, p); };
  pipe->on_close = [this, sp](const std::string&) {
    sp->pipe = nullptr;
    drop_server_if_done(sp);
    maybe_finish_shutdown();
  };
  pipe->start(cfg_.max_frame + kPipeSlack);
  std::string enc = encode_session(keys);
  keys.wipe();
  pipe->send(enc);
  sodium_memzero(enc.data(), enc.size());
  out = sp;
  return true;
}

// The peer's ticket reached a joining queue-server: it is the peer's link
// now. A peer that reconnects replaces its old queue-server; the old one's
// pipe is read to the end first: what it acknowledged to the peer is in
// there, and must be delivered before anything the new one brings.
bool Listener::promote(ServerProc* sp) {
  for (auto j = joining_.begin(); j != joining_.end(); ++j) {
    if (j->get() != sp) continue;
    nlohmann::json entry = {
        {"what", "link"}, {"peer", sp->peer}, {"key", sp->key_fp}, {"address", sp->from}, {"verdict", "allowed"}};
    if (sp->by_cert) entry["by"] = "certificate";
    // Not flushed on its own: a link by itself runs nothing, and the job
    // line that anything run over it needs is flushed before the job
    // starts, taking this one to disk with it (one fdatasync less on every
    // cold path, on each node).
    if (!audit_->record(entry, false)) {
      // Not on record, not allowed: the joining queue-server goes.
      log_error("link from " + sp->peer + " dropped: cannot write the audit log");
      if (sp->child) retire(sp->child);
      return false;
    }
    std::unique_ptr<ServerProc> s = std::move(*j);
    joining_.erase(j);
    sp->joined = true;
    // What the handshake said about the peer counts from now on, not from
    // message 1 (which anyone who recorded it can replay).
    if (sp->by_cert)
      cert_groups_[sp->peer] = sp->cert_groups;
    else
      cert_groups_.erase(sp->peer);
    peer_fingerprints_[sp->peer] = sp->key_fp;
    if (auto it = servers_.find(sp->peer); it != servers_.end()) {
      std::unique_ptr<ServerProc> old = std::move(it->second);
      servers_.erase(it);
      log_info("replacing QueueServer_" + sp->peer + " (pid " + std::to_string(old->child ? old->child->pid() : 0) +
               ")");
      if (old->child) retire(old->child);
      // Read to the end (unless it waits behind an older one: pump()).
      if (old->pipe && !old->held) old->pipe->resume();
      old->state = LinkState::retired;
      retired_servers_.push_back(std::move(old));
    }
    if (sp->learn_addr) {
      // A certified peer that comes back from another address: its client
      // (started with the old --address) is restarted with the new one.
      auto d = dynamic_peers_.find(sp->peer);
      bool moved = d != dynamic_peers_.end() && d->second.str() != sp->addr.str();
      dynamic_peers_[sp->peer] = sp->addr;
      last_to_.clear();  // an address may name this peer now
      if (auto c = clients_.find(sp->peer); moved && c != clients_.end() && c->second->child)
        c->second->child->kill(SIGTERM);
    }
    kick_client(sp->peer);
    servers_[sp->peer] = std::move(s);
    // Events from the new one wait until the old ones' are all in. Frames
    // already read with "up" are still handed out after pause(): they are
    // held, not delivered, so none overtakes the old ones'.
    pump(sp->peer);
    return true;
  }
  return false;
}

// A queue-server's entry goes when the process has exited and its pipe is
// read to the end; then a successor held back behind it may read.
void Listener::drop_server_if_done(ServerProc* sp) {
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
void Listener::pump(std::string peer) {  // by value: it may free the server that owns the name
  std::vector<ServerProc*> order;
  for (auto& r : retired_servers_)
    if (r->peer == peer) order.push_back(r.get());
  if (auto cur = servers_.find(peer); cur != servers_.end()) order.push_back(cur->second.get());
  bool earlier_open = false;
  for (ServerProc* s : order) {
    if (earlier_open) {
      if (!s->held && s->pipe) s->pipe->pause();
      s->held = true;
      continue;
    }
    if (s->held) {
      s->held = false;
      std::deque<std::string> held = std::move(s->held_msgs);
      for (auto& msg : held) on_server_msg(s, msg);
      // Resumed unless it waits for a slow tool (its resume timer does it).
      if (s->pipe && !(s->resume_timer && s->resume_timer->active())) s->pipe->resume();
    }
    earlier_open = s->pipe != nullptr;
  }
  auto done = [&](const std::unique_ptr<ServerProc>& s) {
    return s->peer == peer && s->exited && !s->pipe && !s->held && s->held_msgs.empty();
  };
  retired_servers_.erase(std::remove_if(retired_servers_.begin(), retired_servers_.end(), done),
                         retired_servers_.end());
  if (auto cur = servers_.find(peer); cur != servers_.end() && done(cur->second)) servers_.erase(cur);
}

// A replaced queue-server may be hung or stopped (that is often why its
// peer reconnected): SIGTERM, SIGCONT so a stopped one can act on it, and
// SIGKILL if it is still there after 5 s. No process is left behind.
void Listener::retire(Child* c) {
  c->kill(SIGTERM);
  c->kill(SIGCONT);
  retiring_.insert(c);
  if (!retire_timer_) retire_timer_ = std::make_unique<Timer>(loop_);
  if (!retire_timer_->active())
    retire_timer_->start(5000, [this] {
      for (Child* r : retiring_) r->kill(SIGKILL);
    });
}

void Listener::on_server_msg(ServerProc* s, std::string_view p) {
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
    if (m.state == LinkState::up && !stopping_) {
      std::string key = client_key_for(s->peer);
      if (!key.empty()) ensure_client(key);
    }
    return;
  }
  if (m.type == PipeType::data) {
    // Only the peer's link (its ticket arrived, it is on record) delivers.
    if (!s->joined) return log_error("event from QueueServer_" + s->peer + " before its link was up: dropped");
    if (s->held) {
      s->held_msgs.emplace_back(p);
      return;
    }
    // The queue-server forwards the link's bytes unchanged; the sender's
    // instance came once, with "up".
    EventView ev;
    uint64_t seq = 0;
    if (!decode_data(p, seq, ev, err)) return log_error("bad event from QueueServer_" + s->peer + ": " + err);
    on_delivered(s->peer, s->instance, seq, to_event(ev));
    if (congested_tool_ && s->pipe && !s->pipe->paused()) {
      uint64_t tool = congested_tool_;
      congested_tool_ = 0;
      s->pipe->pause();
      if (!s->resume_timer) s->resume_timer = std::make_unique<Timer>(loop_);
      s->resume_timer->start(
          10,
          [this, s, tool] {
            auto t = tools_.find(tool);
            if (t != tools_.end() && t->second->pending_bytes() > kToolLowWater) return;
            s->resume_timer->stop();
            if (s->pipe) s->pipe->resume();
          },
          10);
    }
    congested_tool_ = 0;
  }
}

}  // namespace jsd
