// Bundles of relayed requests (relay.h): what a tool sends through one
// gateway in one turn of the loop (a fan-out's first window, or the nodes
// of a node set behind that gateway) goes as one event on the link; the
// gateway handles each item as the relay event it stands for. Router
// members kept apart from router.cpp.
//
// The link process knows only the bundle event, so a call in a bundle is
// withdrawn with its whole bundle: the items nobody asked back go again in
// a new one. A bundle too big for the gateway's frames goes again item by
// item.
#include <algorithm>

#include "log.h"
#include "relay.h"
#include "router.h"

namespace jsd {

void Router::send_relayed(uint64_t tool, const std::string& key, const Event& ev) {
  ++relayed_sent_;
  if (!tool || !schedule_flush_) return send_remote(key, ev);
  RelayBundleItem item{ev.id, ev.kind, ev.body};
  size_t size = bundle_item_size(item);
  bool first = open_bundles_.empty();
  OpenBundle& b = open_bundles_[{tool, key}];
  if (!b.items.empty() && (b.bytes + size > kMaxBundleBytes || b.items.size() >= kMaxBundleItems)) {
    send_bundle(key, std::move(b.items));  // full: this one starts the next
    b.items.clear();
    b.bytes = 0;
  }
  b.items.push_back(std::move(item));
  b.bytes += size;
  if (first) schedule_flush_();
}

void Router::flush_bundles() {
  auto open = std::move(open_bundles_);
  open_bundles_.clear();
  for (auto& [at, b] : open)
    if (!b.items.empty()) send_bundle(at.second, std::move(b.items));
}

void Router::send_bundle(const std::string& key, std::vector<RelayBundleItem> items) {
  if (items.size() == 1) {  // as if never gathered: a plain relay event
    auto& i = items[0];
    return send_remote(key, Event{i.kind, i.id, node_, key, "relay", std::move(i.envelope), false});
  }
  uint64_t id = ++next_event_;
  ++relay_bundles_;
  relayed_bundled_ += items.size();
  for (auto& i : items) {
    auto p = pending_.find(i.id);
    if (p != pending_.end()) p->second.bundle = id;
  }
  log_debug("relaying " + std::to_string(items.size()) + " requests through " + key + " as bundle " +
            std::to_string(id));
  send_remote(key, Event{Kind::notify, id, node_, key, "relay.bundle", encode_bundle(items), false});
  bundles_[id] = Bundle{key, std::move(items), false, {}};
}

void Router::withdraw_event(const std::string& key, uint64_t id, std::function<void(bool dropped)> done) {
  if (unpark(id)) return done(true);  // waiting for its target's certificate: never sent
  auto p = pending_.find(id);
  uint64_t bundle = p == pending_.end() ? 0 : p->second.bundle;
  auto b = bundles_.find(bundle);
  if (b == bundles_.end()) {
    // Not sent yet (gathered for this turn's bundle): it never will be.
    for (auto& [at, ob] : open_bundles_) {
      if (at.second != key) continue;
      auto it = std::find_if(ob.items.begin(), ob.items.end(), [id](const auto& i) { return i.id == id; });
      if (it == ob.items.end()) continue;
      ob.bytes -= bundle_item_size(*it);
      ob.items.erase(it);
      return done(true);
    }
    return links_.withdraw(key, id, std::move(done));
  }
  b->second.asked.emplace_back(id, std::move(done));
  if (b->second.withdrawing) return;  // one withdraw of the bundle answers them all
  b->second.withdrawing = true;
  links_.withdraw(b->second.key, bundle, [this, bundle](bool dropped) { bundle_withdrawn(bundle, dropped); });
}

void Router::bundle_withdrawn(uint64_t bundle, bool dropped) {
  auto b = bundles_.find(bundle);
  if (b == bundles_.end()) return;
  Bundle was = std::move(b->second);
  if (dropped)
    bundles_.erase(b);
  else
    b->second = Bundle{was.key, std::move(was.items), false, {}};  // it went out: answers may come
  for (auto& [id, done] : was.asked) done(dropped);
  if (!dropped) return;
  std::vector<RelayBundleItem> again = still_wanted(bundle, was.items);
  if (again.empty()) return;
  log_debug("bundle " + std::to_string(bundle) + " taken back for some of its calls; " + std::to_string(again.size()) +
            " of its requests go again");
  send_bundle(was.key, std::move(again));
}

// Of a bundle that never left this node: a call still waiting for its
// answer goes again (its tool neither asked it back nor went), and the
// notifies with it if any call does (a job's input goes with its job).
std::vector<RelayBundleItem> Router::still_wanted(uint64_t bundle, std::vector<RelayBundleItem>& items) {
  std::vector<RelayBundleItem> again;
  bool calls = false;
  for (auto& i : items) {
    auto p = pending_.find(i.id);
    bool lookup = cert_lookups_.count(i.id) > 0;  // a certificate lookup still wanted (router_certs.cpp)
    bool waiting = lookup || (p != pending_.end() && p->second.bundle == bundle);
    if (i.kind == Kind::call && !waiting) continue;
    if (p != pending_.end() && waiting) p->second.bundle = 0;
    calls = calls || waiting;
    again.push_back(std::move(i));
  }
  if (!calls) again.clear();
  return again;
}

bool Router::bundle_undeliverable(const std::string& key, uint64_t bundle) {
  auto b = bundles_.find(bundle);
  if (b == bundles_.end() || b->second.key != key) return false;
  Bundle was = std::move(b->second);
  bundles_.erase(b);
  log_warn("a bundle of " + std::to_string(was.items.size()) + " relayed requests is too big for " + key +
           "'s frames: sent again one by one");
  // Only what is still wanted: a call whose tool went must not run now.
  for (auto& i : still_wanted(bundle, was.items))
    send_remote(key, Event{i.kind, i.id, node_, key, "relay", std::move(i.envelope), false});
  for (auto& [id, done] : was.asked) done(false);  // sent again: their answers may come
  return true;
}

void Router::forget_bundles() {
  for (auto b = bundles_.begin(); b != bundles_.end();) {
    bool live = b->second.withdrawing || std::any_of(b->second.items.begin(), b->second.items.end(), [&](auto& i) {
                  auto p = pending_.find(i.id);
                  return (p != pending_.end() && p->second.bundle == b->first) || cert_lookups_.count(i.id);
                });
    b = live ? std::next(b) : bundles_.erase(b);
  }
}

// At a gateway (or a target): each item is the relay event it stands for,
// from the same peer over the same link.
void Router::on_relay_bundle(const std::string& peer, const Event& ev) {
  std::vector<RelayBundleItem> items;
  std::string err;
  if (!decode_bundle(ev.body, items, err)) {
    log_warn("relay bundle " + std::to_string(ev.id) + " from " + peer + " dropped: " + err);
    if (relay_) relay_->refused(peer, {}, "relay.bundle", err);
    return;
  }
  for (auto& i : items) on_relay(peer, Event{i.kind, i.id, ev.from, ev.to, "relay", std::move(i.envelope), false});
}

}  // namespace jsd
