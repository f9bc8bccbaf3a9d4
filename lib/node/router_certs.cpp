// Certificate lookups (relay.h): a node reached through a gateway with no
// key pinned for it ("gamma": {"via": "beta"} and trusted_cas) is asked for
// its certificate before the first request is sealed for it. The lookup is
// a relayed call with an empty box that every gateway carries like any
// other; the target answers with its certificate, which the originator
// checks against its trusted_cas: a gateway can withhold or delay the
// answer, not forge one. What a tool sends meanwhile waits here (parked)
// and is sealed and sent when the key is known, or answered with why not.
// Router members kept apart from router.cpp.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "json_out.h"
#include "json_read.h"
#include "log.h"
#include "relay.h"
#include "router.h"

namespace jsd {

void Router::park_for_cert(const Target& t, const Event& ev, uint64_t tool) {
  CertWait& w = cert_waits_[t.name];
  w.parked.push_back({t, ev, tool});
  parked_ids_[ev.id] = t.name;
  // One lookup per target answers them all; a new one if the gateway
  // changed (a reload).
  if (!w.lookup || w.link != t.via) ask_cert(t.name, t.via, w, tool);
}

void Router::refresh_cert(const Target& t, uint64_t tool) {
  CertWait& w = cert_waits_[t.name];
  if (!w.lookup) ask_cert(t.name, t.via, w, tool);
}

void Router::ask_cert(const std::string& target, const std::string& link, CertWait& w, uint64_t tool) {
  if (w.lookup) cert_lookups_.erase(w.lookup);  // its answer, if it comes, is dropped
  w.lookup = ++next_event_;
  w.link = link;
  w.since_ms = now_ms();
  cert_lookups_[w.lookup] = target;
  log_debug("asking " + target + " for its certificate through " + link);
  RelayEnvelope env{node_, target, kCertLookup, {}, ""};
  // A tool's lookups go in its bundles too: a fan-out to nodes whose keys
  // are not known yet sends one event per gateway for them.
  send_relayed(tool, link, Event{Kind::call, w.lookup, node_, link, "relay", encode_envelope(env), false});
}

// The link to a gateway is up again: a lookup it carried may have been
// lost with the gateway (its relayed calls live in its memory), so the
// targets that calls still wait for are asked again.
void Router::ask_certs_again(const std::string& key) {
  for (auto& [target, w] : cert_waits_)
    if (w.link == key && !w.parked.empty()) ask_cert(target, key, w, 0);
}

bool Router::cert_answer(const std::string& peer, const Event& ev) {
  auto l = cert_lookups_.find(ev.id);
  if (l == cert_lookups_.end()) return false;
  auto w = cert_waits_.find(l->second);
  if (w == cert_waits_.end() || w->second.lookup != ev.id) {
    cert_lookups_.erase(l);
    return true;
  }
  if (!peers_.answers_for(peer, w->second.link)) {
    log_warn("reply " + std::to_string(ev.id) + " from " + peer + " to a lookup sent to " + w->second.link +
             "; dropped");
    return true;
  }
  std::string target = l->second, cert, err;
  cert_lookups_.erase(l);
  CertWait wait = std::move(w->second);
  cert_waits_.erase(w);
  nlohmann::json j;
  bool learnt = false;
  if (!parse_json(ev.body, j, err) || !j.is_object()) {
    err = "a malformed answer";
  } else if (j.contains("cert")) {
    learnt = read_string(j, "cert", cert, err, Need::kRequired) && relay_ && relay_->learn_cert(target, cert, err);
  } else {
    std::string refusal;
    // The peer's words go into the log and to the tool: printable only.
    err = read_string(j, "error", refusal, err, Need::kRequired) && !refusal.empty()
              ? printable(refusal)
              : "an answer without a certificate";
  }
  for (auto& p : wait.parked) parked_ids_.erase(p.ev.id);
  if (learnt) {
    log_info("learnt " + target + "'s key from its certificate (through " + wait.link + ")");
    // A notify (a job's input) goes only with a call of its tool that
    // still waits: one whose call was taken back must not go alone.
    std::set<uint64_t> live;
    for (auto& p : wait.parked)
      if (p.ev.kind == Kind::call && pending_.count(p.ev.id)) live.insert(p.tool);
    for (auto& p : wait.parked) {
      if (p.ev.kind == Kind::call ? !pending_.count(p.ev.id) : !live.count(p.tool)) continue;
      std::string why;
      if (!send_to(p.t, p.ev, why, p.tool)) fail_parked(p, why);
    }
    return true;
  }
  if (wait.parked.empty()) {  // a refresh (the key in use stays until its certificate ends)
    log_warn("could not ask " + target + " for its certificate again through " + wait.link + ": " + err);
    return true;
  }
  std::string why = "cannot learn " + target + "'s key (no public_key pinned for it) through " + wait.link + ": " + err;
  log_warn(why);
  for (auto& p : wait.parked) fail_parked(p, why);
  return true;
}

// Answered as its target's refusal would be: a waiting tool hears why, a
// durable submission is kept as refused.
void Router::fail_parked(const Parked& p, const std::string& why) {
  if (p.ev.kind != Kind::call) {
    log_warn("a " + p.ev.object + " notify to " + p.t.name + " was not sent: " + why);
    return;
  }
  auto it = pending_.find(p.ev.id);
  if (it == pending_.end()) return;
  answer_pending(it, Event{Kind::reply, p.ev.id, p.t.name, node_, p.ev.object,
                           dump_json({{"error", why + "; the call was not sent"}}), false});
}

bool Router::unpark(uint64_t id) {
  auto at = parked_ids_.find(id);
  if (at == parked_ids_.end()) return false;
  auto w = cert_waits_.find(at->second);
  parked_ids_.erase(at);
  if (w == cert_waits_.end()) return false;
  auto& parked = w->second.parked;
  auto it = std::find_if(parked.begin(), parked.end(), [id](const Parked& p) { return p.ev.id == id; });
  if (it == parked.end()) return false;
  parked.erase(it);
  return true;
}

void Router::forget_lookups(uint64_t now, uint64_t max_ms) {
  for (auto it = cert_waits_.begin(); it != cert_waits_.end();) {
    CertWait& w = it->second;
    if (now - w.since_ms < max_ms) {
      ++it;
      continue;
    }
    if (!w.parked.empty()) {  // unanswered that long over a link that is up: lost, asked again
      auto st = link_states_.find(w.link);
      if (st != link_states_.end() && st->second.first == LinkState::up) ask_cert(it->first, w.link, w, 0);
      ++it;
      continue;
    }
    // Nobody waits for it: out of its queue if it is still there (an
    // answer that comes anyway finds no lookup and is dropped).
    uint64_t lookup = w.lookup;
    cert_lookups_.erase(lookup);
    withdraw_event(w.link, lookup, [](bool) {});
    it = cert_waits_.erase(it);
  }
}

void Router::answer_lookup(const std::string& peer, const Event& ev) {
  if (ev.kind != Kind::call) return;
  std::string back = peers_.client_key_for(peer), cert = relay_ ? relay_->own_cert() : "";
  if (back.empty()) return;
  std::string body = cert.empty()
                         ? dump_json({{"error", node_ + " has no certificate (cert_file): pin its public_key"}})
                         : dump_json({{"cert", cert}});
  send_remote(back, Event{Kind::reply, ev.id, node_, peer, kCertLookup, std::move(body), false});
}

}  // namespace jsd
