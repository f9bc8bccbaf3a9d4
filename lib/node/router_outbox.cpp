// Durable submissions: what goes into the outbox (STATE_DIR/outbox/), how
// each entry is delivered, sent again after a broken link, and settled by
// its first answer (kept as refused when that is an error). Router members
// kept apart from the routing of router.cpp.
#include <nlohmann/json.hpp>

#include "control_msg.h"
#include "job_request.h"
#include "jsd_limits.h"
#include "json_read.h"
#include "log.h"
#include "router.h"
#include "uvx.h"

namespace jsd {

using nlohmann::json;

namespace {

// The error of an answer from a job object ("" when it is not one; bad says
// so when the answer is JSON nested too deep to be read at all).
std::string answer_error(const std::string& body, json& j, std::string* bad = nullptr) {
  std::string why, err;
  if (!parse_json(body, j, why)) {
    if (bad && !json_depth_within(body, kMaxJsonDepth)) *bad = why;
    return "";
  }
  if (!j.is_object() || !j.contains("error")) return "";
  // The error's dump is bounded: parse_json refused anything deeper.
  return read_string(j, "error", why, err) && !why.empty() ? why : j["error"].dump();
}

// A submission's job name, for the record of its refusal.
std::string job_name_of(const std::string& body) {
  json j;
  std::string job, err;
  if (!parse_json(body, j) || !j.is_object()) return "";
  if (j.contains("argv")) return "(adhoc)";
  return read_string(j, "job", job, err) ? job : "";
}

// A job submission that its target would refuse for good whatever it is
// (its size or its shape: the limits of jsd_limits.h hold on every node),
// so that it is refused here, before it is kept and sent: a request a
// link cannot carry would otherwise be sent again at every start. Other
// objects' bodies are their own business.
bool refused_here(const std::string& object, const std::string& body, std::string& why) {
  JobRequest req;
  if (object != "job" || parse_job_request(body, req, why)) return false;
  return true;
}

// A waiting submitter's submission sent again: as its own resumption from
// the start of the output (nothing of it was relayed yet: its first answer
// takes it out of the outbox), so that a node that ran it already attaches
// the submitter to the kept output and end instead of answering "already
// ran; not run again", and one that never got it runs it.
std::string resumed(const std::string& body) {
  json j;
  if (!parse_json(body, j) || !j.is_object()) return body;
  j["resume"] = true;
  j["stdout_from"] = 0;
  j["stderr_from"] = 0;
  return dump_json(j);
}

}  // namespace

// jsd-submit --no-wait: on disk (fsync'd) before the tool hears "queued",
// so it survives a restart of this node; removed once the remote answered.
// A waiting jsd-submit's submission (it streams) goes the same way, and
// its tool gets the replies: its node's restart delivers it again, and the
// submitter, reconnecting, joins it by id (the id runs once).
void Router::send_durable(uint64_t tool, const Event& ev, const Target& t) {
  json body;
  std::string bad;
  if (!parse_json(ev.body, body, bad) && !json_depth_within(ev.body, kMaxJsonDepth))
    return tool_error(tool, ev.id, "a durable event's body is " + bad);
  std::string id =
      body.is_object() && body.contains("id") && body["id"].is_string() ? body["id"].get<std::string>() : "";
  if (!valid_name(id)) return tool_error(tool, ev.id, "a durable event needs a valid \"id\" in its body");
  bool waits = body.is_object() && body.contains("stream") && body["stream"].is_boolean() && body["stream"].get<bool>();
  std::string why;
  if (refused_here(ev.object, ev.body, why))
    return tool_error(tool, ev.id, "job " + id + " not queued for " + std::string(ev.to) + ": " + why);
  // The id waits in the outbox already (a retry while its first copy waits
  // for a link or an answer): that copy runs, the retry joins it.
  for (auto& [event_id, p] : pending_)
    if (p.outbox_id == id) return join_durable(tool, ev, t, id, waits);
  // Filed as the tool named it: a name or address this node resolves
  // again after a restart. (An address that a certified peer linked from
  // resolves to that peer only while it is known; filed under its name,
  // the entry could not be delivered after a restart, and stayed.)
  OutboxEntry e{id, ev.to, ev.object, ev.body};
  e.sync = !waits;
  std::string err;
  if (!durable_.put(e, err)) return tool_error(tool, ev.id, "cannot queue durably: " + err);
  // A waiting jsd-submit (it streams) gets the replies; its node's restart
  // delivers the submission again and the reconnecting submitter joins it.
  if (waits) return deliver_outbox_entry(e, tool, ev.id);
  // --no-wait: when the target can answer soon (its link is up, or it is
  // this node), the tool waits for the answer (bounded, on its side): a
  // refusal is then an error it can report, not only a line in this node's
  // log. Otherwise "queued" is all there is to say until the link comes up.
  auto st = link_states_.find(t.link());
  bool wait = t.name == node_ || (st != link_states_.end() && st->second.first == LinkState::up);
  reply_to_tool(tool, {Kind::reply, ev.id, node_, node_, ev.object,
                       dump_json({{"type", "queued_locally"}, {"id", id}, {"waiting", wait}}), wait});
  if (wait)
    deliver_outbox_entry(e, tool, ev.id, true);
  else
    deliver_outbox_entry(e);
}

// A submission whose id is in the outbox already. --no-wait: it is queued,
// as asked. A waiting submitter joins the job by id, from the start of its
// output: its call (not kept: the first copy is) reaches the target after
// the first copy, so it attaches to the job that copy started, or runs it
// if the first copy is lost; either way it runs once, and the submitter
// exits with its status.
void Router::join_durable(uint64_t tool, const Event& ev, const Target& t, const std::string& id, bool waits) {
  if (!waits)
    return reply_to_tool(tool, {Kind::reply, ev.id, node_, node_, ev.object,
                                dump_json({{"type", "queued_locally"}, {"id", id}, {"waiting", false}}), false});
  log_info("submission " + id + " is in the outbox already: its new submitter joins it");
  Event call{Kind::call, ++next_event_,    node_, t.name.empty() ? std::string(ev.to) : t.name,
             ev.object,  resumed(ev.body), false};
  uint64_t tool_id = ev.id;
  if (t.name == node_)
    return dispatch_local(call, [this, tool, tool_id](const std::string& object, std::string b, bool more) {
      reply_to_tool(tool, {Kind::reply, tool_id, node_, node_, object, std::move(b), more});
    });
  pending_[call.id] = {tool, tool_id, t.link(), "", "", "", "", "", now_ms()};
  if (!t.via.empty()) pending_[call.id].to = t.name;
  std::string err;
  if (!send_to(t, call, err)) {
    pending_.erase(call.id);
    tool_error(tool, tool_id, err);
  }
}

// The --no-wait tool that waits for its submission's acceptance hears that
// it will not come soon (the link went down): its submission stays queued
// here.
void Router::stop_waiting(Pending& p) {
  if (p.tool == 0 || !p.until_accepted) return;
  reply_to_tool(p.tool, {Kind::reply, p.tool_id, node_, node_, "job",
                         dump_json({{"type", "queued_locally"}, {"id", p.outbox_id}, {"waiting", false}}), false});
  p.tool = 0;
}

void Router::deliver_outbox_entry(const OutboxEntry& e, uint64_t tool, uint64_t tool_id, bool until_accepted) {
  Target t;
  std::string err;
  if (!peers_.resolve(e.to, t, err)) {
    log_warn("outbox entry " + e.id + ": " + err + "; kept for a later start");
    Pending p{tool, tool_id, e.to, e.id, "", "", "", ""};
    p.until_accepted = until_accepted;
    return stop_waiting(p);
  }
  Event ev{Kind::call, ++next_event_, node_, t.name.empty() ? e.to : t.name, e.object, e.body, false};
  pending_[ev.id] = {tool, tool_id, t.link(), e.id, job_name_of(e.body), "", e.object, e.body, now_ms()};
  pending_[ev.id].until_accepted = until_accepted;
  if (!t.via.empty()) pending_[ev.id].to = t.name;
  if (t.name == node_) {
    uint64_t id = ev.id;
    dispatch_local(ev, [this, id](const std::string& object, std::string body, bool more) {
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      // Nobody waits, or a --no-wait tool waits for this answer only.
      if (!it->second.tool || it->second.until_accepted) return outbox_answered(id, body);
      Pending p = it->second;
      if (!it->second.outbox_id.empty()) {
        settle_outbox(p, body);
        it->second.outbox_id.clear();
      }
      if (!more) pending_.erase(id);
      reply_to_tool(p.tool, {Kind::reply, p.tool_id, node_, node_, object, std::move(body), more});
    });
  } else if (!send_to(t, ev, err)) {
    // Kept for a later start (a key may be pinned by then); whoever waits
    // hears why.
    log_warn("outbox entry " + e.id + ": " + err + "; kept for a later start");
    Pending p = pending_[ev.id];
    pending_.erase(ev.id);
    if (p.tool && !p.until_accepted) return tool_error(p.tool, p.tool_id, err);
    stop_waiting(p);
  }
}

// Any answer ends a durable submission's stay in the outbox: an error is
// final (a job the target does not define or allow, a malformed request),
// and sending it again would only be refused again, forever. It is kept as
// refused, so that --status can say why the target does not know the id.
void Router::outbox_answered(uint64_t id, const std::string& body) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = it->second;
  pending_.erase(it);
  settle_outbox(p, body);
}

void Router::settle_outbox(const Pending& p, const std::string& body) {
  const std::string& to = p.to.empty() ? p.client_key : p.to;  // a relayed one: its target, not its gateway
  json j;
  std::string bad;
  std::string why = answer_error(body, j, &bad);
  if (!bad.empty())
    log_warn("durable submission " + p.outbox_id + " to " + to + ": its answer is malformed (" + bad +
             "); it leaves the outbox as answered");
  if (!why.empty()) {
    durable_.refuse(p.outbox_id, dump_json({{"id", p.outbox_id},
                                            {"to", to},
                                            {"job", p.job},
                                            {"state", "refused"},
                                            {"error", why},
                                            {"refused", wall_time()}}));
    log_warn("durable submission " + p.outbox_id + " to " + to + " refused: " + printable(why));
  } else {
    log_info("durable submission " + p.outbox_id + " delivered to " + to +
             (p.to.empty() ? "" : " (via " + p.client_key + ")"));
  }
  durable_.remove(p.outbox_id);
  // A --no-wait tool waiting for it gets the target's answer as it is:
  // accepted (with the record), a duplicate, or the error that refused it.
  // (A waiting jsd-submit gets every reply on its way: on_delivered.)
  if (p.tool != 0 && p.until_accepted)
    reply_to_tool(p.tool, {Kind::reply, p.tool_id, node_, node_, "job", body, false});
}

// A status call's answer: when the target answers with an error (it does
// not know the id) and this node kept that target's refusal of a durable
// submission with the id, the refusal is the answer: the tool learns why
// the job never ran there, instead of "no such job".
std::string Router::with_refusal(const std::string& status_of, const std::string& client_key, std::string body) {
  json j;
  if (answer_error(body, j).empty()) return body;
  json r;
  std::string to;
  if (!parse_json(durable_.refusal(status_of), r) || !r.is_object()) return body;
  std::string err;
  if (!read_string(r, "to", to, err) || to != client_key) return body;  // refused by another node
  return dump_json({{"type", "refused"}, {"record", r}});
}

// A durable submission among them leaves the outbox as refused (its id is
// free again), instead of going out at every link-up to a peer that closes
// the link on it.
void Router::undeliverable(const std::string& key, uint64_t id, const std::string& why) {
  if (bundle_undeliverable(key, id)) return;
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    // A call this node relays: the node it came from hears the refusal.
    auto r = relays_.find(id);
    if (r == relays_.end() || r->second.link != key) return;
    Relayed back = r->second;
    relays_.erase(r);
    send_remote(back.back, Event{Kind::reply, back.back_id, node_, back.from, back.object,
                                 dump_json({{"type", "error"}, {"error", why}}), false});
    return;
  }
  if (it->second.client_key != key) return;
  Pending p = it->second;
  pending_.erase(it);
  std::string body = dump_json({{"type", "error"}, {"error", why}});
  if (!p.outbox_id.empty()) settle_outbox(p, body);
  if (!p.tool || (!p.outbox_id.empty() && p.until_accepted)) return;  // settle_outbox told it, or nobody waits
  if (p.object == "job")
    reply_to_tool(p.tool, {Kind::reply, p.tool_id, key, node_, "job", body, false});
  else
    tool_error(p.tool, p.tool_id, why);
}

void Router::resend_durable(const std::string& key) {
  std::vector<uint64_t> again;
  for (auto& [id, p] : pending_)
    if (p.client_key == key && !p.outbox_id.empty() && p.resend) again.push_back(id);
  for (uint64_t old : again) {
    Pending p = pending_[old];
    pending_.erase(old);
    unpark(old);  // it waited for a certificate: never sent, it goes (or waits) as the new copy
    p.resend = false;
    p.resent = true;
    Target t;
    std::string err;
    if (!peers_.resolve(p.to.empty() ? p.client_key : p.to, t, err)) continue;
    // A waiting submitter heard nothing of it yet: it resumes, and gets
    // the job's output and end even if the job ran meanwhile.
    if (p.tool && !p.until_accepted) p.body = resumed(p.body);
    Event ev{Kind::call, ++next_event_, node_, t.name.empty() ? p.client_key : t.name, p.object, p.body, false};
    pending_[ev.id] = p;
    log_info("durable submission " + p.outbox_id + " sent to " + (p.to.empty() ? key : p.to) +
             " again (its link broke)");
    if (!send_to(t, ev, err)) pending_[ev.id].resend = true;  // (sealed for again at the next link up)
  }
}

void Router::replay_outbox() {
  auto entries = durable_.load();
  if (!entries.empty()) log_info("outbox: " + std::to_string(entries.size()) + " durable submissions to deliver");
  for (auto& e : entries) {
    // Kept by an older version, whose limits were wider: refused for good
    // here (kept as refused, out of the outbox), never sent again.
    std::string why;
    if (!refused_here(e.object, e.body, why)) {
      deliver_outbox_entry(e);
      continue;
    }
    durable_.refuse(e.id, dump_json({{"id", e.id},
                                     {"to", e.to},
                                     {"job", job_name_of(e.body)},
                                     {"state", "refused"},
                                     {"error", why},
                                     {"refused", wall_time()}}));
    durable_.remove(e.id);
    log_warn("durable submission " + e.id + " to " + e.to + " refused here: " + printable(why));
  }
}

}  // namespace jsd
