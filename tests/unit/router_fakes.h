// Fakes for the router's interfaces (router.h), shared by the router's
// unit tests: links, tools, durable store, local objects and relay keys,
// each recording what the router did with it.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "control_msg.h"
#include "relay.h"
#include "router.h"
#include "uvx.h"

namespace jsd::testing_fakes {

struct FakeLinks : RouterLinks {
  struct Sent {
    std::string key;
    Event ev;
  };
  std::vector<Sent> sent;
  void send(const std::string& key, const EventView& ev) override { sent.push_back({key, to_event(ev)}); }
  // Withdraws wait here until the test answers for the link process.
  struct Withdraw {
    std::string key;
    uint64_t event_id;
    std::function<void(bool)> done;
  };
  std::vector<Withdraw> withdraws;
  void withdraw(const std::string& key, uint64_t event_id, std::function<void(bool)> done) override {
    withdraws.push_back({key, event_id, std::move(done)});
  }
};

struct FakeTools : RouterTools {
  std::map<uint64_t, std::vector<ControlMsg>> got;
  std::map<uint64_t, size_t> backlogs;
  std::vector<uint64_t> closed;
  void send(uint64_t tool, const std::string& bytes) override {
    ControlMsg m;
    std::string err;
    EXPECT_TRUE(decode_control(bytes, m, err)) << err;
    got[tool].push_back(m);
  }
  void close(uint64_t tool) override { closed.push_back(tool); }
  size_t backlog(uint64_t tool) const override {
    auto it = backlogs.find(tool);
    return it == backlogs.end() ? 0 : it->second;
  }
};

struct FakeDurable : DurableStore {
  std::map<std::string, OutboxEntry> entries;
  std::vector<std::string> log;  // "put ID" / "remove ID", in order
  bool fail = false;
  bool put(const OutboxEntry& e, std::string& err) override {
    if (fail) {
      err = "disk full";
      return false;
    }
    entries[e.id] = e;
    log.push_back("put " + e.id);
    return true;
  }
  void remove(const std::string& id) override {
    entries.erase(id);
    log.push_back("remove " + id);
  }
  std::vector<OutboxEntry> load() override {
    std::vector<OutboxEntry> v;
    for (auto& [id, e] : entries) v.push_back(e);
    return v;
  }
  std::map<std::string, std::string> refused;
  void refuse(const std::string& id, const std::string& record) override {
    refused[id] = record;
    log.push_back("refuse " + id);
  }
  std::string refusal(const std::string& id) override {
    auto it = refused.find(id);
    return it == refused.end() ? "" : it->second;
  }
};

struct FakeLocal : LocalObjects {
  struct Call {
    std::string from, body;
    ReplyFn reply;
  };
  std::vector<Call> jobs;
  void job(const std::string& from, const std::string& body, ReplyFn reply) override {
    jobs.push_back({from, body, std::move(reply)});
  }
  std::string status() override { return R"({"node":"alpha"})"; }
};

inline Config two_peers() {
  Config c = default_config();
  c.node = "alpha";
  std::string err;
  Endpoint b, g;
  EXPECT_TRUE(parse_endpoint("127.0.0.3:4455", b, err));
  EXPECT_TRUE(parse_endpoint("127.0.0.4:4455", g, err));
  c.peers["beta"] = b;
  c.peers["gamma"] = g;
  return c;
}

// Relayed requests (gateways). The fake "seals" by prefixing the sealer's
// and the recipient's names, so a box says who made it for whom; the
// crypto itself is relay_test.cpp's.
struct FakeRelayKeys : RelayKeys {
  std::string self;
  bool gateway = false;
  std::set<std::string> seen;
  std::vector<std::string> refusals;
  // Certificates: "cert-of-NAME" is NAME's; targets in cert_only have no
  // key until their certificate is learnt.
  std::set<std::string> cert_only, learnt, stale;
  bool cert_stale(const std::string& target) override { return stale.count(target) > 0; }
  std::string my_cert, last_open_cert;
  bool needs_cert(const std::string& target) override { return cert_only.count(target) && !learnt.count(target); }
  bool learn_cert(const std::string& target, const std::string& cert, std::string& err) override {
    if (cert != "cert-of-" + target) {
      err = "the certificate of " + target + " is not accepted";
      return false;
    }
    learnt.insert(target);
    return true;
  }
  std::string own_cert() const override { return my_cert; }
  bool is_gateway() const override { return gateway; }
  uint64_t window_ms() const override { return 300000; }
  bool seal(const std::string& target, std::string_view plain, std::string& sealed, std::string& err) override {
    if (target == "nokey") {
      err = "no key for " + target;
      return false;
    }
    sealed = self + ">" + target + ":" + std::string(plain);
    return true;
  }
  bool open(const std::string& origin, const std::string& cert, std::string_view sealed, std::string& plain,
            std::string& fp, std::string& err) override {
    last_open_cert = cert;
    std::string head = origin + ">" + self + ":";
    if (sealed.substr(0, head.size()) != head) {
      err = "the request was not sealed with " + origin + "'s key";
      return false;
    }
    plain = std::string(sealed.substr(head.size()));
    fp = "b2:" + origin;
    return true;
  }
  bool first_use(const std::string& rid, uint64_t, std::string& err) override {
    if (seen.insert(rid).second) return true;
    err = "a replay";
    return false;
  }
  void refused(const std::string& origin, const std::vector<std::string>& via, const std::string&,
               const std::string& why) override {
    refusals.push_back(origin + "|" + (via.empty() ? "" : via.back()) + "|" + why);
  }
};

struct ViaLocal : FakeLocal {
  std::vector<std::vector<std::string>> vias;
  void job_via(const std::string& from, const std::vector<std::string>& via, const std::string& body,
               ReplyFn reply) override {
    vias.push_back(via);
    job(from, body, std::move(reply));
  }
};

struct RelayRouterTest : testing::Test {
  Config cfg = two_peers();  // alpha: beta, gamma direct
  Peers peers{cfg};
  FakeLinks links;
  FakeTools tools;
  FakeDurable durable;
  ViaLocal local;
  FakeRelayKeys keys;
  Router router{"alpha", peers, links, tools, durable, local};
  RelayRouterTest() {
    cfg.via["delta"] = "beta";
    cfg.via["nokey"] = "beta";
    keys.self = "alpha";
    router.use_relay(&keys);
  }
  // What a relayed request from origin for target looks like on the link
  // from peer, sealed by sealer.
  Event relayed(const std::string& sealer, const std::string& origin, const std::string& target,
                std::vector<std::string> via, const std::string& body, const std::string& rid = "0123456789abcdef",
                uint64_t id = 77) {
    RelayRequest rq{origin, target, uint64_t(wall_time() * 1000), rid, Kind::call, "job", body};
    RelayEnvelope env{origin, target, "job", std::move(via), sealer + ">" + target + ":" + encode_relay_request(rq)};
    std::string from = env.via.empty() ? origin : env.via.back();
    return Event{Kind::call, id, from, "alpha", "relay", encode_envelope(env), false};
  }
  uint64_t seq_ = 0;
  void deliver(const std::string& peer, const Event& ev) { router.on_delivered(peer, 1, ++seq_, ev); }
};

}  // namespace jsd::testing_fakes
