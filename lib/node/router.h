// The router: events between the node's tools, its links and its local
// objects (ping, status, job), and replies back to whoever waits for them.
// It owns the calls in flight and the duplicate filter; everything it
// drives is behind a small interface, so it is tested with fakes
// (tests/unit/router_test.cpp) without a loop, a process or a disk.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "event.h"
#include "jsd_limits.h"
#include "link_state.h"
#include "outbox.h"
#include "peers.h"
#include "relay.h"
#include "uvx.h"

namespace jsd {

// Sends one reply to a caller: object is "job" (JSON body) or "job.stdout" /
// "job.stderr" (raw bytes); more=false ends the call.
using ReplyFn = std::function<void(const std::string& object, std::string body, bool more)>;

// The links to other nodes (LinkClients in the listener).
class RouterLinks {
 public:
  virtual ~RouterLinks() = default;
  // Queues ev for the link keyed client_key (a peer name or host:port),
  // starting its client if there is none; it is sent in queue order.
  virtual void send(const std::string& client_key, const EventView& ev) = 0;
  // Takes the event event_id back out of client_key's queue if no link has
  // carried it yet. done(true): it is out and will never be sent;
  // done(false): it may have reached the peer, or it is not queued. done
  // runs exactly once, at once or after a round trip to the link process.
  virtual void withdraw(const std::string& client_key, uint64_t event_id, std::function<void(bool dropped)> done) = 0;
};

// The tools connected to the control socket, by connection number.
class RouterTools {
 public:
  virtual ~RouterTools() = default;
  virtual void send(uint64_t tool, const std::string& control_msg) = 0;
  virtual void close(uint64_t tool) = 0;
  // Bytes written to the tool and not yet read by it (0 when gone).
  virtual size_t backlog(uint64_t tool) const = 0;
};

// Durable submissions (the Outbox on disk in the listener).
class DurableStore {
 public:
  virtual ~DurableStore() = default;
  virtual bool put(const OutboxEntry& e, std::string& err) = 0;
  virtual void remove(const std::string& id) = 0;
  virtual std::vector<OutboxEntry> load() = 0;
  // Kept as refused (its target answered with an error), with its record.
  virtual void refuse(const std::string& id, const std::string& record) = 0;
  // The record kept by refuse(), or "".
  virtual std::string refusal(const std::string& id) = 0;
};

// The node's own objects besides ping.
class LocalObjects {
 public:
  virtual ~LocalObjects() = default;
  virtual void job(const std::string& from, const std::string& body, ReplyFn reply) = 0;
  virtual std::string status() = 0;             // the status object, JSON
  virtual std::string metrics() { return ""; }  // the Prometheus text (metrics.h)
  // A chunk of a job's standard input (object "job.stdin", job_input.h).
  virtual void job_input(const std::string& from, std::string_view body) {}
  // A call to the job object relayed by the gateways via (a sealed request
  // from its originator, from): judged as from's, audited with via too.
  virtual void job_via(const std::string& from, const std::vector<std::string>& via, const std::string& body,
                       ReplyFn reply) {
    job(from, body, std::move(reply));
  }
};

// Relayed requests (relay.h): the node's keys and replay memory, behind an
// interface so that the router is tested without a disk or a key file.
class RelayKeys {
 public:
  virtual ~RelayKeys() = default;
  virtual bool is_gateway() const = 0;     // "gateway": true
  virtual uint64_t window_ms() const = 0;  // relay_window_s
  // plain sealed for target (its pinned key, else the key its certificate
  // gave): false with err when this node has no key for it.
  virtual bool seal(const std::string& target, std::string_view plain, std::string& sealed, std::string& err) = 0;
  // A box from origin opened with its pinned key, else (none pinned) with
  // the key of cert, origin's certificate as its envelope carried it, if a
  // trusted CA signed it; key_fp: that key's fingerprint. False with err:
  // no key for origin, or it does not open.
  virtual bool open(const std::string& origin, const std::string& cert, std::string_view sealed, std::string& plain,
                    std::string& key_fp, std::string& err) = 0;
  // No key for target here yet, but its certificate can tell it (none
  // pinned, trusted_cas set): the router asks target for it first.
  virtual bool needs_cert(const std::string& target) { return false; }
  // Its key is known from a certificate learnt a while ago: still used,
  // and asked for again.
  virtual bool cert_stale(const std::string& target) { return false; }
  // target's answer to that lookup: its certificate, checked (trusted_cas,
  // its name, revocation) and its key kept for seal. False with err.
  virtual bool learn_cert(const std::string& target, const std::string& cert, std::string& err) {
    err = "this node learns no keys from certificates";
    return false;
  }
  // This node's certificate (cert_file) or "": sent with each relayed
  // request it makes and as its answer to a lookup.
  virtual std::string own_cert() const { return ""; }
  // The request id rid, sealed at sealed_ms, seen for the first time: it is
  // remembered (on disk) until it leaves the window. False: seen before
  // (err says so), or it cannot be remembered (err).
  virtual bool first_use(const std::string& rid, uint64_t sealed_ms, std::string& err) = 0;
  // A relayed request refused here, for the audit log.
  virtual void refused(const std::string& origin, const std::vector<std::string>& via, const std::string& object,
                       const std::string& why) = 0;
};

class Router {
 public:
  Router(const std::string& node, const Peers& peers, RouterLinks& links, RouterTools& tools, DurableStore& durable,
         LocalObjects& local)
      : node_(node), peers_(peers), links_(links), tools_(tools), durable_(durable), local_(local) {}

  // A message from a tool on the control socket.
  void on_tool_msg(uint64_t tool, std::string_view p);
  // The tool's connection closed: its calls have nobody to answer.
  void tool_gone(uint64_t tool);
  // An event a link delivered from peer, whose listener instance sent it
  // with seq. Returns the tool it went to if that tool now has more than
  // kToolHighWater unread (the caller stops reading that link), else 0.
  uint64_t on_delivered(const std::string& peer, uint64_t instance, uint64_t seq, const Event& ev);
  // The link to client_key changed state: the tools waiting on it hear of it.
  void on_link_state(const std::string& client_key, LinkState state, const std::string& detail);
  // The link process kept call id back for good (the peer would not read
  // it): answered as the peer's refusal would be, never sent again.
  void undeliverable(const std::string& client_key, uint64_t id, const std::string& why);
  // Delivers every durable submission kept from before (at start).
  void replay_outbox();
  // An address may name another peer now: forget the last resolution.
  void forget_targets() { last_to_.clear(); }
  // Calls from tools that have waited max_ms (idle_client_s) in a queue
  // whose link is not up are taken back (if no link carried them) and
  // answered with an error, so that the queue, and its client, can end.
  void expire_calls(uint64_t now, uint64_t max_ms);
  // Calls or relayed calls wait for answers (expire_calls has work).
  bool waiting() const { return !pending_.empty() || !relays_.empty() || !bundles_.empty() || !cert_waits_.empty(); }
  // A peer left the configuration: the calls waiting for it are taken back
  // and answered with an error (durable ones stay in the outbox).
  void peer_removed(const std::string& client_key);

  // Relayed requests are sealed and opened with these (none: this node
  // neither sends nor takes relayed requests).
  void use_relay(RelayKeys* r) { relay_ = r; }

  // Bundles (relay.h): a tool's relayed requests are gathered per gateway
  // link and go as one event when flush_bundles() runs; schedule is called
  // when the first one is gathered, and the listener runs flush_bundles()
  // in its loop's next turn, after it has read what the tool sent in this
  // one (a fan-out's burst). Without schedule each request goes at once.
  void use_bundles(std::function<void()> schedule) { schedule_flush_ = std::move(schedule); }
  void flush_bundles();
  // Counters for the metrics (jsd-listener(8)): relayed requests sent
  // (first sends only), bundles sent, requests that went in one.
  uint64_t relayed_sent() const { return relayed_sent_; }
  uint64_t relay_bundles() const { return relay_bundles_; }
  uint64_t relayed_bundled() const { return relayed_bundled_; }

  // A tool that reads its replies slower than they come: its link stops
  // being read above the high mark and resumes below the low one.
  static constexpr size_t kToolHighWater = kOutputHighWater, kToolLowWater = kOutputLowWater;

 private:
  struct Pending {
    // A durable submission's tool (jsd-submit --no-wait) when it waits for
    // the target's answer; 0 when nobody waits.
    uint64_t tool, tool_id;
    std::string client_key;
    std::string outbox_id;        // a durable submission: removed when answered
    std::string job;              // a durable submission: its job's name, for the refusal record
    std::string status_of;        // a tool's job status call: the id asked about
    std::string object, body;     // a durable submission: sent again after a broken link
    uint64_t since_ms = 0;        // when it was queued (now_ms())
    bool resend = false;          // a durable submission whose link broke after it was sent
    bool resent = false;          // ... and was sent again: it never expires (an older copy may wait)
    bool on_link = false;         // a withdraw said it may have gone out: it does not expire
    bool expiring = false;        // a withdraw is under way
    bool until_accepted = false;  // its tool (--no-wait) waits only for the acceptance
    std::string to = {};          // a relayed call: its target (client_key is its gateway's link)
    uint64_t bundle = 0;          // a relayed call sent in a bundle: the bundle event's id
  };
  // A bundle on a link: withdrawn whole (the link process knows only the
  // bundle event), its other items then sent again.
  struct Bundle {
    std::string key;  // the gateway's link
    std::vector<RelayBundleItem> items;
    bool withdrawing = false;
    std::vector<std::pair<uint64_t, std::function<void(bool)>>> asked;  // items a withdraw wants back
  };
  // A call this node relays as a gateway: its replies go back to the node
  // it came from, under the id that node gave it.
  struct Relayed {
    std::string back;  // the client key of the link it came over
    uint64_t back_id;  // its id there
    std::string from;  // the peer it came from
    std::string link;  // the link it went on over
    std::string object;
    uint64_t since_ms = 0;
    bool on_link = false;  // a withdraw said it may have gone out
  };
  // Sends a call or notify to t, sealed and relayed when t is a via peer;
  // false with err when it cannot be sealed.
  // tool: the tool it comes from (0: the outbox), whose relayed requests
  // are bundled.
  bool send_to(const Target& t, const Event& ev, std::string& err, uint64_t tool = 0);
  // A relayed request (its envelope in ev.body) to the gateway link key:
  // gathered into tool's bundle for key, or sent at once.
  void send_relayed(uint64_t tool, const std::string& key, const Event& ev);
  void send_bundle(const std::string& key, std::vector<RelayBundleItem> items);
  // links_.withdraw for a pending call, which may be in a bundle.
  void withdraw_event(const std::string& key, uint64_t id, std::function<void(bool dropped)> done);
  void bundle_withdrawn(uint64_t bundle, bool dropped);
  // The items of a bundle that never left that go again (moved out of items).
  std::vector<RelayBundleItem> still_wanted(uint64_t bundle, std::vector<RelayBundleItem>& items);
  // A bundle too big for its gateway: its items go again one by one.
  bool bundle_undeliverable(const std::string& key, uint64_t bundle);
  // Bundles whose calls are all answered or gone are forgotten.
  void forget_bundles();
  // Certificate lookups (router_certs.cpp): what goes to a target whose
  // key this node does not know yet waits (parked) while one lookup asks
  // the target for its certificate through the same gateway; then it is
  // sealed and sent, or answered with why not.
  struct Parked {
    Target t;
    Event ev;
    uint64_t tool;
  };
  struct CertWait {
    uint64_t lookup = 0;  // the lookup call's event id
    std::string link;     // the gateway link it went on
    uint64_t since_ms = 0;
    std::vector<Parked> parked;
  };
  void park_for_cert(const Target& t, const Event& ev, uint64_t tool);
  // Its key is known but old: asked for again while it is used.
  void refresh_cert(const Target& t, uint64_t tool);
  void ask_cert(const std::string& target, const std::string& link, CertWait& w, uint64_t tool);
  void ask_certs_again(const std::string& link);
  // A reply to a lookup (false: ev answers no lookup).
  bool cert_answer(const std::string& peer, const Event& ev);
  // Takes a parked event back (a withdraw): false if id is not parked.
  bool unpark(uint64_t id);
  void fail_parked(const Parked& p, const std::string& why);
  // Lookups nobody waits for any more that waited max_ms are taken back.
  void forget_lookups(uint64_t now, uint64_t max_ms);
  // This node's answer to a lookup for it.
  void answer_lookup(const std::string& peer, const Event& ev);
  // A reply to pending call it (checked: from the node asked).
  uint64_t answer_pending(std::unordered_map<uint64_t, Pending>::iterator it, const Event& ev);
  void on_relay(const std::string& peer, const Event& ev);
  void on_relay_bundle(const std::string& peer, const Event& ev);
  void open_relayed(const std::string& peer, const Event& ev, const RelayEnvelope& env);
  bool relay_reply(const std::string& peer, const Event& ev);
  void refuse_relay(const std::string& peer, const Event& ev, const std::string& origin,
                    const std::vector<std::string>& via, const std::string& object, const std::string& why);
  // The relayed calls waiting on link key that its state (refused) or their
  // wait (max_ms) ends: taken back and answered with an error if no link
  // carried them.
  void fail_relays(const std::string& key, LinkState state, const std::string& detail, uint64_t now, uint64_t max_ms);
  void tool_error(uint64_t tool, uint64_t id, const std::string& why);
  void take_back(uint64_t id, std::function<std::string(const Pending&)> why);
  void withdraw(uint64_t tool, uint64_t tool_id);
  void reply_to_tool(uint64_t tool, Event ev);
  void send_durable(uint64_t tool, const Event& ev, const Target& t);
  void join_durable(uint64_t tool, const Event& ev, const Target& t, const std::string& id, bool waits);
  // tool, tool_id: the tool that waits for its replies (0: none); until_accepted:
  // a --no-wait tool, which waits only for the node's acceptance.
  void deliver_outbox_entry(const OutboxEntry& e, uint64_t tool = 0, uint64_t tool_id = 0, bool until_accepted = false);
  void stop_waiting(Pending& p);
  void outbox_answered(uint64_t id, const std::string& body);
  // Its first answer takes a durable submission out of the outbox (kept
  // as refused when the answer is an error).
  void settle_outbox(const Pending& p, const std::string& body);
  void resend_durable(const std::string& key);
  std::string with_refusal(const std::string& status_of, const std::string& client_key, std::string body);
  void send_remote(const std::string& client_key, const Event& ev);
  void dispatch_local(const Event& ev, ReplyFn reply);

  std::string node_;
  const Peers& peers_;
  RouterLinks& links_;
  RouterTools& tools_;
  DurableStore& durable_;
  LocalObjects& local_;
  RelayKeys* relay_ = nullptr;
  std::unordered_map<uint64_t, Relayed> relays_;               // by the event id sent on
  std::unordered_map<uint64_t, Pending> pending_;              // by the event id sent
  std::map<std::string, std::pair<uint64_t, uint64_t>> seen_;  // peer -> instance, last seq
  // Event ids go on from the clock (microseconds), not from 0: a reply
  // the peer still sends to a call of this node's previous run (it
  // restarted; the peer re-sends what it had not delivered) must not
  // match a new call's id (a re-attaching jsd-submit would print its
  // output twice).
  uint64_t next_event_ = uint64_t(wall_time() * 1e6);
  std::string last_to_;  // a burst of events mostly goes to one node
  Target last_target_;
  std::string last_key_;
  std::map<std::string, std::pair<LinkState, std::string>> link_states_;  // by client key: last state, detail
  std::function<void()> schedule_flush_;
  struct OpenBundle {
    std::vector<RelayBundleItem> items;
    size_t bytes = 0;
  };
  std::map<std::pair<uint64_t, std::string>, OpenBundle> open_bundles_;  // by (tool, gateway link): not sent yet
  std::unordered_map<uint64_t, Bundle> bundles_;                         // sent, by the bundle event's id
  uint64_t relayed_sent_ = 0, relay_bundles_ = 0, relayed_bundled_ = 0;
  std::map<std::string, CertWait> cert_waits_;              // by target
  std::unordered_map<uint64_t, std::string> cert_lookups_;  // lookup event id -> target
  std::unordered_map<uint64_t, std::string> parked_ids_;    // parked event id -> target
};

}  // namespace jsd
