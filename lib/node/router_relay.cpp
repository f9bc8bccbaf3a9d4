// Relayed requests (gateways, relay.h): sealing them at their originator,
// carrying them at a gateway and their replies back, opening and judging
// them at their target. Router members kept apart from router.cpp.
//
// The target acts on a relayed request only as its originator's: the box
// must open with the originator's pinned key, say what its envelope says,
// have been sealed within relay_window_s of the target's clock, and carry a
// request id the target has not seen. A gateway can drop or delay a
// request; whatever else it does is refused here and audited.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "jsd_limits.h"
#include "log.h"
#include "relay.h"
#include "router.h"
#include "uvx.h"

namespace jsd {

namespace {

std::string via_text(const std::vector<std::string>& via) {
  std::string s;
  for (auto& g : via) s += (s.empty() ? "" : ",") + g;
  return s.empty() ? "-" : s;
}

std::string error_body(const std::string& why) { return dump_json({{"error", why}}); }

}  // namespace

bool Router::send_to(const Target& t, const Event& ev, std::string& err, uint64_t tool) {
  if (t.via.empty()) {
    send_remote(t.key(), ev);
    return true;
  }
  if (!relay_) {
    err = "cannot reach " + t.name + " through " + t.via + ": this node does not relay";
    return false;
  }
  if (relay_->needs_cert(t.name)) {
    park_for_cert(t, ev, tool);
    return true;
  }
  if (relay_->cert_stale(t.name)) refresh_cert(t, tool);
  RelayEnvelope env{node_, t.name, ev.object, {}, "", relay_->own_cert()};
  RelayRequest rq{node_,     t.name,  uint64_t(wall_time() * 1000), new_relay_id(), ev.kind,
                  ev.object, ev.body, cert_hash(env.cert)};
  if (!relay_->seal(t.name, encode_relay_request(rq), env.box, err)) return false;
  send_relayed(tool, t.via, Event{ev.kind, ev.id, node_, t.via, "relay", encode_envelope(env), false});
  return true;
}

void Router::refuse_relay(const std::string& peer, const Event& ev, const std::string& origin,
                          const std::vector<std::string>& via, const std::string& object, const std::string& why) {
  log_warn("relayed " + printable(object) + " request from " + printable(origin) + " (via " + via_text(via) +
           ", link " + peer + ") refused: " + why);
  if (relay_) relay_->refused(origin, via, object, why);
  if (ev.kind != Kind::call) return;
  std::string back = peers_.client_key_for(peer);
  if (!back.empty())
    send_remote(back,
                Event{Kind::reply, ev.id, node_, peer, valid_name(object) ? object : "relay", error_body(why), false});
}

void Router::on_relay(const std::string& peer, const Event& ev) {
  RelayEnvelope env;
  std::string err;
  if (!decode_envelope(ev.body, env, err)) return refuse_relay(peer, ev, "?", {}, "relay", err);
  // The link it came over is authenticated: it is the last gateway named,
  // or the originator itself.
  const std::string& last = env.via.empty() ? env.origin : env.via.back();
  if (last != peer)
    return refuse_relay(peer, ev, env.origin, env.via, env.object,
                        "it came from " + peer + " but names " + last + " as its last hop");
  if (env.target == node_) return open_relayed(peer, ev, env);
  if (!relay_ || !relay_->is_gateway())
    return refuse_relay(peer, ev, env.origin, env.via, env.object,
                        node_ + " is not a gateway (its configuration does not say \"gateway\": true)");
  if (env.origin == node_ || std::find(env.via.begin(), env.via.end(), node_) != env.via.end() ||
      env.via.size() >= kMaxRelayHops)
    return refuse_relay(peer, ev, env.origin, env.via, env.object,
                        "a relay loop, or more than " + std::to_string(kMaxRelayHops) + " gateways");
  Target t;
  if (!peers_.resolve(env.target, t, err) || t.name != env.target)
    return refuse_relay(
        peer, ev, env.origin, env.via, env.object,
        "gateway " + node_ + " cannot reach " + env.target + ": " + (err.empty() ? "not one of its peers" : err));
  env.via.push_back(node_);
  Event fwd{ev.kind, ++next_event_, node_, t.via.empty() ? t.name : t.via, "relay", encode_envelope(env), false};
  if (ev.kind == Kind::call) {
    std::string back = peers_.client_key_for(peer);
    if (back.empty())
      return refuse_relay(peer, ev, env.origin, env.via, env.object, "no link back to " + peer + " for its answers");
    relays_[fwd.id] = {back, ev.id, peer, t.link(), env.object, now_ms()};
  }
  log_debug("relaying " + env.object + " " + std::to_string(ev.id) + " from " + env.origin + " to " + env.target +
            " over " + t.link());
  links_.send(t.link(), view_of(fwd));
}

void Router::open_relayed(const std::string& peer, const Event& ev, const RelayEnvelope& env) {
  auto refuse = [&](const std::string& why) { refuse_relay(peer, ev, env.origin, env.via, env.object, why); };
  if (!relay_) return refuse(node_ + " takes no relayed requests");
  if (env.origin == node_) return refuse("it claims to come from " + node_ + " itself");
  if (env.object == kCertLookup && env.box.empty()) return answer_lookup(peer, ev);
  std::string plain, key_fp, err;
  if (!relay_->open(env.origin, env.cert, env.box, plain, key_fp, err)) return refuse(err);
  RelayRequest rq;
  if (!decode_relay_request(plain, rq, err)) return refuse(err);
  if (rq.origin != env.origin || rq.target != node_ || rq.object != env.object || rq.kind != ev.kind)
    return refuse("the sealed request (from " + printable(rq.origin) + " to " + printable(rq.target) + ", " +
                  printable(rq.object) + ") does not say what its envelope says");
  // The certificate (its groups) is the one the originator sent.
  if (rq.cert_hash != cert_hash(env.cert))
    return refuse("the sealed request names another certificate than its envelope carries");
  uint64_t now = uint64_t(wall_time() * 1000), w = relay_->window_ms();
  if (rq.sealed_ms + w < now || rq.sealed_ms > now + w)
    return refuse("sealed " + std::to_string((int64_t(now) - int64_t(rq.sealed_ms)) / 1000) +
                  " s from this node's clock, outside its validity window of " + std::to_string(w / 1000) +
                  " s (relay_window_s)");
  if (!relay_->first_use(rq.rid, rq.sealed_ms, err)) return refuse(err);
  std::string back = peers_.client_key_for(peer);
  ReplyFn reply = nullptr;
  if (ev.kind == Kind::call)
    reply = [this, back, id = ev.id, peer](const std::string& object, std::string body, bool more) {
      if (!back.empty()) send_remote(back, Event{Kind::reply, id, node_, peer, object, std::move(body), more});
    };
  Event in{ev.kind, ev.id, env.origin, node_, rq.object, std::move(rq.body), false};
  log_debug("relayed " + in.object + " from " + env.origin + " (key " + key_fp + ", via " + via_text(env.via) +
            ") opened");
  if (in.object == "job")
    return local_.job_via(
        in.from, env.via, in.body, reply ? reply : [](const std::string&, std::string, bool) {});
  dispatch_local(in, reply);
}

bool Router::relay_reply(const std::string& peer, const Event& ev) {
  auto it = relays_.find(ev.id);
  if (it == relays_.end()) return false;
  if (!peers_.answers_for(peer, it->second.link)) {
    log_warn("reply " + std::to_string(ev.id) + " from " + peer + " to a call relayed to " + it->second.link +
             "; dropped");
    return true;
  }
  Relayed r = it->second;
  if (!ev.more) relays_.erase(it);
  send_remote(r.back, Event{Kind::reply, r.back_id, node_, r.from, ev.object, ev.body, ev.more});
  return true;
}

// A relayed call that cannot go on (its next link is refused, or waited
// max_ms without coming up) is taken back; if no link carried it, the node
// it came from hears that it was not sent, as a tool would.
void Router::fail_relays(const std::string& key, LinkState state, const std::string& detail, uint64_t now,
                         uint64_t max_ms) {
  std::vector<uint64_t> due;
  for (auto& [id, r] : relays_) {
    if (r.on_link) continue;
    if (!key.empty() && r.link != key) continue;
    if (key.empty()) {  // expiry: only those waiting for a link that is not up
      auto st = link_states_.find(r.link);
      if (now - r.since_ms < max_ms || (st != link_states_.end() && st->second.first == LinkState::up)) continue;
    }
    due.push_back(id);
  }
  for (uint64_t id : due) {
    relays_[id].on_link = true;  // one withdraw at a time
    std::string why = key.empty() ? "no link after " + std::to_string(max_ms / 1000) + " s (idle_client_s)"
                                  : std::string(link_state_name(state)) + (detail.empty() ? "" : ": " + detail);
    links_.withdraw(relays_[id].link, id, [this, id, why](bool dropped) {
      auto it = relays_.find(id);
      if (it == relays_.end()) return;
      if (!dropped) return;  // it may have gone out: its answer may come
      Relayed r = it->second;
      relays_.erase(it);
      send_remote(r.back, Event{Kind::reply, r.back_id, node_, r.from, r.object,
                                error_body("gateway " + node_ + " cannot reach " + r.link + ": " + why +
                                           "; the call was not sent"),
                                false});
    });
  }
}

}  // namespace jsd
