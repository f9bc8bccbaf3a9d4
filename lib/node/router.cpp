// Events: from local tools to remote nodes, from remote nodes to local
// objects, and replies back to the tool that is waiting for them.
#include "router.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "control_msg.h"
#include "jsd_limits.h"
#include "json_read.h"
#include "log.h"
#include "uvx.h"

namespace jsd {

using nlohmann::json;

namespace {

// The id a tool's job call asks the status of ("" for any other call).
std::string status_call_id(std::string_view body) {
  if (body.find("\"status\"") == std::string_view::npos) return "";  // most calls: no parse
  json j;
  std::string op, id, err;
  if (!parse_json(body, j) || !j.is_object() || !read_string(j, "op", op, err) || op != "status" ||
      !read_string(j, "id", id, err))
    return "";
  return id;
}

}  // namespace

void Router::tool_error(uint64_t tool, uint64_t id, const std::string& why) {
  ControlMsg m;
  m.type = ControlType::error;
  m.id = id;
  m.why = why;
  tools_.send(tool, encode_control(m));
}

void Router::reply_to_tool(uint64_t tool, Event ev) {
  ControlMsg r;
  r.type = ControlType::reply;
  r.ev = std::move(ev);
  tools_.send(tool, encode_control(r));
}

void Router::on_tool_msg(uint64_t tool, std::string_view p) {
  if (!p.empty() && static_cast<uint8_t>(p[0]) == static_cast<uint8_t>(ControlType::status)) {
    ControlMsg r;
    r.type = ControlType::status_reply;
    r.status = local_.status();
    tools_.send(tool, encode_control(r));
    return;
  }
  if (!p.empty() && static_cast<uint8_t>(p[0]) == static_cast<uint8_t>(ControlType::metrics)) {
    ControlMsg r;
    r.type = ControlType::metrics_text;
    r.status = local_.metrics();
    tools_.send(tool, encode_control(r));
    return;
  }
  if (!p.empty() && static_cast<uint8_t>(p[0]) == static_cast<uint8_t>(ControlType::withdraw)) {
    ControlMsg m;
    std::string err;
    if (!decode_control(p, m, err)) {
      log_warn("bad message on the control socket: " + err);
      tools_.close(tool);
      return;
    }
    return withdraw(tool, m.id);
  }
  EventView v;
  bool durable = false;
  std::string err;
  if (!decode_send(p, durable, v, err)) {
    log_warn("bad message on the control socket: " + err);
    tools_.close(tool);
    return;
  }
  if (!valid_name(v.object)) return tool_error(tool, v.id, "invalid object name '" + printable(v.object) + "'");
  if (last_to_.empty() || v.to != last_to_) {
    Target t;
    if (!peers_.resolve(std::string(v.to), t, err)) return tool_error(tool, v.id, err);
    last_to_ = v.to;
    last_target_ = t;
    last_key_ = t.link();
  }
  const Target& t = last_target_;
  uint64_t tool_id = v.id;
  std::string status_of = v.kind == Kind::call && v.object == "job" && !durable ? status_call_id(v.body) : "";
  if (durable || t.name == node_) {
    Event ev = to_event(v);
    if (durable) return send_durable(tool, ev, t);
    ev.from = node_;
    if (ev.kind != Kind::call) return dispatch_local(ev, nullptr);
    return dispatch_local(
        ev, [this, tool, tool_id, status_of, key = last_key_](const std::string& object, std::string body, bool more) {
          if (!more && !status_of.empty()) body = with_refusal(status_of, key, std::move(body));
          reply_to_tool(tool, {Kind::reply, tool_id, node_, node_, object, std::move(body), more});
        });
  }
  if (!t.via.empty()) {  // through a gateway: sealed for its target
    Event ev = to_event(v);
    ev.id = ++next_event_;
    ev.from = node_;
    ev.to = t.name;
    if (ev.kind == Kind::call) {
      pending_[ev.id] = {tool, tool_id, last_key_, "", "", status_of, "", "", now_ms()};
      pending_[ev.id].to = t.name;
    }
    if (!send_to(t, ev, err, tool)) {
      pending_.erase(ev.id);
      return tool_error(tool, tool_id, err);
    }
    return;
  }
  // To a remote node: a few fields rewritten, the rest copied once, straight
  // into the queue that keeps them until the remote acknowledges them.
  v.id = ++next_event_;
  v.from = node_;
  if (!t.name.empty()) v.to = t.name;
  if (v.kind == Kind::call) pending_[v.id] = {tool, tool_id, last_key_, "", "", status_of, "", "", now_ms()};
  links_.send(last_key_, v);
}

// A tool gives up on its call tool_id (a refused link, its --timeout, a
// signal): the call goes back out of the queue if it never left this node,
// so that a tool told "not sent" can promise its user the job will not run.
void Router::withdraw(uint64_t tool, uint64_t tool_id) {
  auto answer = [this, tool, tool_id](WithdrawVerdict v) {
    ControlMsg m;
    m.type = ControlType::withdrawn;
    m.id = tool_id;
    m.verdict = v;
    tools_.send(tool, encode_control(m));
  };
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& kv) { return kv.second.tool == tool && kv.second.tool_id == tool_id; });
  // Not in flight: answered already, sent to this node itself (run at once)
  // or never sent. Only the node's record can tell what happened.
  if (it == pending_.end()) return answer(WithdrawVerdict::unknown);
  uint64_t event_id = it->first;
  it->second.expiring = true;  // a withdraw is under way: no second one (tool_gone, expire_calls)
  withdraw_event(it->second.client_key, event_id, [this, event_id, answer](bool dropped) {
    // Nothing can answer a call that was never sent: forget it, so that a
    // reply claiming to be its answer goes nowhere; and a durable one
    // leaves the outbox, or a restart would send it after all. One that
    // went out waits for its answer.
    auto p = pending_.find(event_id);
    if (dropped && p != pending_.end()) {
      if (!p->second.outbox_id.empty()) durable_.remove(p->second.outbox_id);
      pending_.erase(p);
    } else if (p != pending_.end()) {
      p->second.expiring = false;
      p->second.on_link = true;
    }
    answer(dropped ? WithdrawVerdict::not_sent : WithdrawVerdict::unknown);
  });
}

// Its calls that still wait in a queue go back out of it: nobody waits for
// their answers, and a queue that holds them keeps its client (and its
// retries) alive for nothing.
void Router::tool_gone(uint64_t tool) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.tool != tool) {
      ++it;
    } else if (!it->second.outbox_id.empty()) {  // a durable submission stays; nobody waits for its answer
      it->second.tool = 0;
      ++it;
    } else {
      if (!it->second.on_link && !it->second.expiring) withdraw_event(it->second.client_key, it->first, [](bool) {});
      it = pending_.erase(it);
    }
  }
}

void Router::expire_calls(uint64_t now, uint64_t max_ms) {
  std::vector<uint64_t> due;
  for (auto& [id, p] : pending_) {
    // A --no-wait submission waits for its link however long it takes; a
    // waiting jsd-submit's (in the outbox too, for restarts) does not.
    bool no_wait = !p.outbox_id.empty() && (p.tool == 0 || p.until_accepted);
    // One sent again (resend_durable) may have an older copy in the queue
    // that one withdraw would not take back: it waits for its answer.
    if (no_wait || p.resent || p.on_link || p.expiring || now - p.since_ms < max_ms) continue;
    auto st = link_states_.find(p.client_key);
    if (st == link_states_.end() || st->second.first != LinkState::up) due.push_back(id);
  }
  fail_relays("", LinkState::down, "", now, max_ms);
  forget_bundles();
  forget_lookups(now, max_ms);
  std::string secs = std::to_string(max_ms / 1000);
  for (uint64_t id : due)
    take_back(id, [this, secs](const Pending& p) {
      auto st = link_states_.find(p.client_key);
      std::string why = st == link_states_.end()    ? std::string("no link")
                        : st->second.second.empty() ? std::string(link_state_name(st->second.first))
                                                    : st->second.second;
      log_info("a call to " + p.client_key + " waited " + secs +
               " s (idle_client_s) without a link: answered with an error");
      return "cannot reach " + p.client_key + ": " + why + "; gave up after " + secs +
             " s (idle_client_s): the call was not sent";
    });
}

void Router::peer_removed(const std::string& key) {
  last_to_.clear();
  std::vector<uint64_t> due;
  for (auto& [id, p] : pending_)
    if (p.client_key == key && p.outbox_id.empty() && !p.on_link && !p.expiring) due.push_back(id);
  for (uint64_t id : due)
    take_back(id, [](const Pending& p) {
      return p.client_key + " is no longer a peer of this node (configuration reloaded): the call was not sent";
    });
}

// A call goes back out of its queue if no link carried it, and its tool
// hears why (an error: the call was not sent). One that may have gone out
// stays: its answer may still come, and it never expires.
void Router::take_back(uint64_t id, std::function<std::string(const Pending&)> why) {
  Pending& entry = pending_[id];
  entry.expiring = true;
  std::string key = entry.client_key;  // done() may run at once and erase the entry
  withdraw_event(key, id, [this, id, why = std::move(why)](bool dropped) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // answered, or its tool went, meanwhile
    it->second.expiring = false;
    if (!dropped) {
      it->second.on_link = true;
      return;
    }
    Pending p = it->second;
    pending_.erase(it);
    if (!p.outbox_id.empty()) durable_.remove(p.outbox_id);  // never sent: it must not be after a restart
    tool_error(p.tool, p.tool_id, why(p));
  });
}

void Router::send_remote(const std::string& key, const Event& ev) { links_.send(key, view_of(ev)); }

void Router::on_link_state(const std::string& key, LinkState state, const std::string& detail) {
  link_states_[key] = {state, detail};
  if (state == LinkState::up) {
    ask_certs_again(key);
    return resend_durable(key);
  }
  if (state == LinkState::refused) fail_relays(key, state, detail, 0, 0);
  if (state == LinkState::connecting) return;
  // A durable submission the link carried may have been acknowledged by a
  // queue-server whose listener then died before it kept it: once the link
  // is up again it is sent again (its id makes it run once).
  for (auto& [id, p] : pending_)
    if (p.client_key == key && !p.outbox_id.empty()) {
      p.resend = true;
      stop_waiting(p);
    }
  // Tell every tool waiting on this node, once per tool: a refusal is final
  // for them, "down" is news while the events wait.
  std::map<uint64_t, uint64_t> told;
  for (auto& [id, p] : pending_)
    if (p.client_key == key && p.tool && !told.count(p.tool)) told[p.tool] = p.tool_id;
  for (auto& [tool, tool_id] : told) {
    ControlMsg m;
    m.type = ControlType::notice;
    m.node = key;
    m.id = tool_id;
    m.state = state;
    m.detail = detail;
    tools_.send(tool, encode_control(m));
  }
}

uint64_t Router::on_delivered(const std::string& peer, uint64_t instance, uint64_t seq, const Event& ev) {
  // Exactly once per listener lifetime: a client that died before it saw an
  // ack resends; the same (instance, seq) is dropped here.
  auto& [inst, last] = seen_[peer];
  if (inst != instance) {
    inst = instance;
    last = 0;
  }
  if (seq <= last) {
    log_debug("dropped duplicate event " + std::to_string(seq) + " from " + peer);
    return 0;
  }
  last = seq;
  if (ev.from != peer) {
    log_warn("event from link " + peer + " claims to be from '" + printable(ev.from) + "'; dropped");
    return 0;
  }
  if (ev.kind == Kind::reply) {
    auto it = pending_.find(ev.id);
    if (it == pending_.end()) {
      // An answer to a certificate lookup, to a call this node relays, or
      // to a tool that is gone.
      if (!cert_answer(peer, ev)) relay_reply(peer, ev);
      return 0;
    }
    // Only the node that was asked may answer (ids are guessable).
    if (!peers_.answers_for(peer, it->second.client_key)) {
      log_warn("reply " + std::to_string(ev.id) + " from " + peer + " to a call sent to " + it->second.client_key +
               "; dropped");
      return 0;
    }
    return answer_pending(it, ev);
  }
  if (ev.object == "relay") {
    on_relay(peer, ev);
    return 0;
  }
  if (ev.object == "relay.bundle") {
    on_relay_bundle(peer, ev);
    return 0;
  }
  if (ev.kind == Kind::notify) {
    dispatch_local(ev, nullptr);
    return 0;
  }
  std::string back = peers_.client_key_for(peer);
  dispatch_local(ev, [this, back, ev_id = ev.id, to = ev.from](const std::string& object, std::string body, bool more) {
    if (back.empty()) return;
    send_remote(back, Event{Kind::reply, ev_id, node_, to, object, std::move(body), more});
  });
  return 0;
}

uint64_t Router::answer_pending(std::unordered_map<uint64_t, Pending>::iterator it, const Event& ev) {
  Pending p = it->second;
  if (!p.outbox_id.empty() && (!p.tool || p.until_accepted)) {  // nobody waits, or only for this answer
    outbox_answered(ev.id, ev.body);
    return 0;
  }
  if (!p.outbox_id.empty()) {  // a waiting durable submission: answered, out of the outbox
    settle_outbox(p, ev.body);
    it->second.outbox_id.clear();
  }
  if (!ev.more) pending_.erase(it);
  Event r = ev;
  r.id = p.tool_id;
  if (!p.to.empty()) r.from = p.to;  // relayed: its gateway carried the answer of its target
  if (!ev.more && !p.status_of.empty())
    r.body = with_refusal(p.status_of, p.to.empty() ? p.client_key : p.to, std::move(r.body));
  reply_to_tool(p.tool, std::move(r));
  return tools_.backlog(p.tool) > kToolHighWater ? p.tool : 0;
}

void Router::dispatch_local(const Event& ev, ReplyFn reply) {
  if (ev.object == "job.stdin") return local_.job_input(ev.from, ev.body);  // its answers go to the submission
  // A notify has nobody to answer: give the runner a sink.
  if (ev.object == "job")
    return local_.job(
        ev.from, ev.body, reply ? reply : [](const std::string&, std::string, bool) {});
  if (!reply) return;
  if (ev.object == "ping") return reply(ev.object, ev.body.empty() ? "{}" : ev.body, false);
  if (ev.object == "status") return reply(ev.object, local_.status(), false);
  reply(ev.object, dump_json({{"error", "no object '" + ev.object + "' on node " + node_}}), false);
}

}  // namespace jsd