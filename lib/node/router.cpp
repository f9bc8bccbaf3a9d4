// Events: from local tools to remote nodes, from remote nodes to local
// objects, and replies back to the tool that is waiting for them.
#include <unistd.h>

#include "jsd_version.h"
#include "listener_impl.h"
#include "log.h"

namespace jsd {

using nlohmann::json;

void Listener::tool_error(uint64_t tool, uint64_t id, const std::string& why) {
  auto it = tools_.find(tool);
  if (it == tools_.end()) return;
  ControlMsg m;
  m.type = ControlType::error;
  m.id = id;
  m.why = why;
  it->second->send(encode_control(m));
}

void Listener::on_tool_msg(uint64_t tool, std::string_view p) {
  auto it = tools_.find(tool);
  if (it == tools_.end()) return;
  EventView v;
  bool durable = false;
  std::string err;
  if (!p.empty() && static_cast<uint8_t>(p[0]) == static_cast<uint8_t>(ControlType::status)) {
    ControlMsg r;
    r.type = ControlType::status_reply;
    r.status = dump_json(status_json());
    it->second->send(encode_control(r));
    return;
  }
  if (!decode_send(p, durable, v, err)) {
    log_warn("bad message on the control socket: " + err);
    it->second->close();
    return;
  }
  if (!valid_name(v.object)) return tool_error(tool, v.id, "invalid object name '" + printable(v.object) + "'");
  // A burst of events mostly goes to one node: remember the last answer.
  if (last_to_.empty() || v.to != last_to_) {
    Target t;
    if (!resolve(std::string(v.to), t, err)) return tool_error(tool, v.id, err);
    last_to_ = v.to;
    last_target_ = t;
    last_key_ = t.key();
  }
  const Target& t = last_target_;
  uint64_t tool_id = v.id;
  if (durable || t.name == cfg_.node) {
    Event ev = to_event(v);
    if (durable) return send_durable(tool, ev, t);
    ev.from = cfg_.node;
    if (ev.kind != Kind::call) return dispatch_local(ev, nullptr);
    return dispatch_local(ev, [this, tool, tool_id](const std::string& object, std::string body, bool more) {
      auto i = tools_.find(tool);
      if (i == tools_.end()) return;
      ControlMsg r;
      r.type = ControlType::reply;
      r.ev = {Kind::reply, tool_id, cfg_.node, cfg_.node, object, std::move(body), more};
      i->second->send(encode_control(r));
    });
  }
  // To a remote node: rewrite a few fields and copy the bytes once, straight
  // into the queue that keeps them until the remote acknowledges them.
  ClientProc& c = ensure_client(last_key_);
  uint64_t seq = ++c.next_seq;
  v.id = ++next_event_;
  v.from = cfg_.node;
  if (!t.name.empty()) v.to = t.name;
  if (v.kind == Kind::call) pending_[v.id] = {tool, tool_id, last_key_, ""};
  auto& slot = c.queue.emplace_back(seq, std::string());
  encode_data_into(slot.second, seq, v);
  c.queued_bytes += slot.second.size();
  if (c.pipe) c.pipe->send(slot.second);
}

// jsd-submit --no-wait: on disk (fsync'd) before the tool hears "queued",
// so it survives a restart of this node; removed once the remote answered.
void Listener::send_durable(uint64_t tool, const Event& ev, const Target& t) {
  auto body = json::parse(ev.body, nullptr, false);
  std::string id =
      body.is_object() && body.contains("id") && body["id"].is_string() ? body["id"].get<std::string>() : "";
  if (!valid_name(id)) return tool_error(tool, ev.id, "a durable event needs a valid \"id\" in its body");
  OutboxEntry e{id, t.key(), ev.object, ev.body};
  std::string err;
  if (!outbox_->put(e, err)) return tool_error(tool, ev.id, "cannot queue durably: " + err);
  ControlMsg r;
  r.type = ControlType::reply;
  r.ev = {Kind::reply, ev.id, cfg_.node, cfg_.node, ev.object, dump_json({{"type", "queued_locally"}, {"id", id}}),
          false};
  tools_[tool]->send(encode_control(r));
  deliver_outbox_entry(e);
}

// A NODE argument as resolve_target() reads it, and a host:port that is
// the address a certified peer linked from is that peer: one client, one
// link per peer, however the tools name it.
bool Listener::resolve(const std::string& to, Target& t, std::string& err) {
  if (!resolve_target(cfg_, to, t, err)) return false;
  if (t.name.empty())
    for (auto& [name, addr] : dynamic_peers_)
      if (addr.host == t.addr.host && addr.port == t.addr.port) t.name = name;
  return true;
}

void Listener::deliver_outbox_entry(const OutboxEntry& e) {
  Target t;
  std::string err;
  if (!resolve(e.to, t, err)) {
    log_warn("outbox entry " + e.id + ": " + err + "; kept for a later start");
    return;
  }
  Event ev{Kind::call, ++next_event_, cfg_.node, t.name.empty() ? e.to : t.name, e.object, e.body};
  pending_[ev.id] = {0, 0, t.key(), e.id};
  if (t.name == cfg_.node) {
    uint64_t id = ev.id;
    dispatch_local(ev, [this, id](const std::string&, std::string body, bool) { outbox_answered(id, body); });
  } else {
    send_remote(t.key(), std::move(ev));
  }
}

void Listener::outbox_answered(uint64_t id, const std::string& body) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  std::string oid = it->second.outbox_id, to = it->second.client_key;
  pending_.erase(it);
  outbox_->remove(oid);
  auto j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error"))
    log_warn("durable submission " + oid + " to " + to + " refused: " + j["error"].dump());
  else
    log_info("durable submission " + oid + " delivered to " + to);
}

void Listener::replay_outbox() {
  auto entries = outbox_->load();
  if (!entries.empty()) log_info("outbox: " + std::to_string(entries.size()) + " durable submissions to deliver");
  for (auto& e : entries) deliver_outbox_entry(e);
}

void Listener::send_remote(const std::string& key, Event ev) {
  ClientProc& c = ensure_client(key);
  uint64_t seq = ++c.next_seq;
  c.queue.emplace_back(seq, encode_data(seq, ev));
  c.queued_bytes += c.queue.back().second.size();
  if (c.pipe) c.pipe->send(c.queue.back().second);
}

void Listener::notify_tools_about(const std::string& key, LinkState state, const std::string& detail) {
  if (state == LinkState::up || state == LinkState::connecting) return;
  // Tell every tool waiting on this node, once per tool: a refusal is final
  // for them, "down" is news while the events wait.
  std::map<uint64_t, uint64_t> told;
  for (auto& [id, p] : pending_)
    if (p.client_key == key && !told.count(p.tool)) told[p.tool] = p.tool_id;
  for (auto& [tool, tool_id] : told) {
    auto it = tools_.find(tool);
    if (it == tools_.end()) continue;
    ControlMsg m;
    m.type = ControlType::notice;
    m.node = key;
    m.id = tool_id;
    m.state = state;
    m.detail = detail;
    it->second->send(encode_control(m));
  }
}

void Listener::on_delivered(const std::string& peer, uint64_t instance, uint64_t seq, const Event& ev) {
  // Exactly once per listener lifetime: a client that died before it saw an
  // ack resends; the same (instance, seq) is dropped here.
  auto& [inst, last] = seen_[peer];
  if (inst != instance) {
    inst = instance;
    last = 0;
  }
  if (seq <= last) {
    log_debug("dropped duplicate event " + std::to_string(seq) + " from " + peer);
    return;
  }
  last = seq;
  if (ev.from != peer) {
    log_warn("event from link " + peer + " claims to be from '" + printable(ev.from) + "'; dropped");
    return;
  }
  if (ev.kind == Kind::reply) {
    auto it = pending_.find(ev.id);
    if (it == pending_.end()) return;  // the tool is gone
    Pending p = it->second;
    // Only the node that was asked may answer (ids are guessable).
    // The node that was asked: by name, or (a certified peer called by
    // host:port) at the address it is known by.
    auto d = dynamic_peers_.find(peer);
    if (client_key_for(peer) != p.client_key && !(d != dynamic_peers_.end() && d->second.str() == p.client_key)) {
      log_warn("reply " + std::to_string(ev.id) + " from " + peer + " to a call sent to " + p.client_key + "; dropped");
      return;
    }
    if (!p.outbox_id.empty()) return outbox_answered(ev.id, ev.body);
    if (!ev.more) pending_.erase(it);
    auto t = tools_.find(p.tool);
    if (t == tools_.end()) return;
    ControlMsg r;
    r.type = ControlType::reply;
    r.ev = ev;
    r.ev.id = p.tool_id;
    t->second->send(encode_control(r));
    if (t->second->pending_bytes() > kToolHighWater) congested_tool_ = p.tool;
    return;
  }
  if (ev.kind == Kind::notify) return dispatch_local(ev, nullptr);
  std::string back = client_key_for(peer);
  dispatch_local(ev, [this, back, ev_id = ev.id, to = ev.from](const std::string& object, std::string body, bool more) {
    if (back.empty()) return;
    send_remote(back, Event{Kind::reply, ev_id, cfg_.node, to, object, std::move(body), more});
  });
}

void Listener::dispatch_local(const Event& ev, ReplyFn reply) {
  if (ev.object == "ping") {
    if (reply) reply(ev.object, ev.body.empty() ? "{}" : ev.body, false);
    return;
  }
  if (ev.object == "status") {
    if (reply) reply(ev.object, dump_json(status_json()), false);
    return;
  }
  if (ev.object == "job") {
    // A notify has nobody to answer: give the runner a sink.
    jobs_->handle(
        ev.from, ev.body, reply ? reply : [](const std::string&, std::string, bool) {});
    return;
  }
  if (reply) reply(ev.object, dump_json({{"error", "no object '" + ev.object + "' on node " + cfg_.node}}), false);
}

json Listener::status_json() {
  json links = json::array();
  for (auto& [k, c] : clients_) {
    links.push_back({{"peer", c->remote_node.empty() ? k : c->remote_node},
                     {"direction", "out"},
                     {"process", "QueueClient_" + k},
                     {"pid", c->child ? c->child->pid() : 0},
                     {"state", link_state_name(c->state)},
                     {"detail", c->detail},
                     {"queued", c->queue.size()},
                     {"since", iso_time(c->since)},
                     {"restarts", c->restarts}});
  }
  for (auto& [k, s] : servers_) {
    links.push_back({{"peer", k},
                     {"direction", "in"},
                     {"process", "QueueServer_" + k},
                     {"pid", s->child ? s->child->pid() : 0},
                     {"state", link_state_name(s->state)},
                     {"port", s->port},
                     {"queued", 0},
                     {"since", iso_time(s->since)}});
  }
  json j = {{"node", cfg_.node},           {"version", JSD_VERSION},      {"pid", getpid()},
            {"listen", cfg_.listen.str()}, {"since", iso_time(started_)}, {"links", links}};
  if (jobs_) j["jobs"] = jobs_->status_json();
  return j;
}

}  // namespace jsd
