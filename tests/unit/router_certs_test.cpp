// Certificate lookups (router_certs.cpp): what goes to a node reached
// through a gateway whose key is known only from its certificate waits for
// one lookup, then goes sealed; a failed lookup answers the waiting calls
// and sends nothing; a withdrawn call never goes; a target answers a lookup
// with its certificate; and an originator's certificate reaches the key
// check of its target.
#include <gtest/gtest.h>

#include "relay.h"
#include "router.h"
#include "router_fakes.h"

using namespace jsd;
using namespace jsd::testing_fakes;

namespace {

struct CertLookupTest : RelayRouterTest {
  CertLookupTest() {
    cfg.via["epsilon"] = "beta";
    keys.cert_only = {"epsilon"};
    keys.my_cert = "cert-of-alpha";
  }
  void call(uint64_t tool, uint64_t id, const std::string& to) {
    ControlMsg m;
    m.type = ControlType::send;
    m.ev = {Kind::call, id, "", to, "job", R"({"op":"submit","job":"hello"})", false};
    router.on_tool_msg(tool, encode_control(m));
  }
  RelayEnvelope envelope(const Event& ev) {
    RelayEnvelope env;
    std::string err;
    EXPECT_TRUE(decode_envelope(ev.body, env, err)) << err;
    return env;
  }
  // The gateway beta answers the lookup sent as links.sent[i].
  void answer(size_t i, const std::string& body) {
    router.on_delivered("beta", 1, ++seq_,
                        Event{Kind::reply, links.sent[i].ev.id, "beta", "alpha", "cert", body, false});
  }
};

TEST_F(CertLookupTest, CallsWaitForOneLookupThenGoSealedWithTheOriginatorsCertificate) {
  call(1, 5, "epsilon");
  call(1, 6, "epsilon");
  ASSERT_EQ(links.sent.size(), 1u);  // the lookup only, once for both
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.kind, Kind::call);
  RelayEnvelope lookup = envelope(links.sent[0].ev);
  EXPECT_EQ(lookup.object, "cert");
  EXPECT_EQ(lookup.target, "epsilon");
  EXPECT_TRUE(lookup.box.empty());
  EXPECT_TRUE(router.waiting());
  answer(0, R"({"cert":"cert-of-epsilon"})");
  ASSERT_EQ(links.sent.size(), 3u);
  for (size_t i = 1; i < 3; ++i) {
    RelayEnvelope env = envelope(links.sent[i].ev);
    EXPECT_EQ(env.object, "job");
    EXPECT_EQ(env.cert, "cert-of-alpha");
    EXPECT_EQ(env.box.substr(0, 14), "alpha>epsilon:");
  }
  // Known now: the next call goes at once, and its answer reaches the tool.
  call(1, 7, "epsilon");
  ASSERT_EQ(links.sent.size(), 4u);
  EXPECT_EQ(envelope(links.sent[3].ev).object, "job");
  router.on_delivered("beta", 1, ++seq_,
                      Event{Kind::reply, links.sent[3].ev.id, "beta", "alpha", "job", R"({"type":"end"})", false});
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].ev.id, 7u);
  EXPECT_EQ(tools.got[1][0].ev.from, "epsilon");
}

TEST_F(CertLookupTest, AFailedLookupAnswersTheWaitingCallsAndSendsNothing) {
  call(1, 5, "epsilon");
  answer(0, R"({"error":"gateway beta cannot reach epsilon: not one of its peers"})");
  EXPECT_EQ(links.sent.size(), 1u);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].ev.id, 5u);
  EXPECT_NE(tools.got[1][0].ev.body.find("cannot learn epsilon's key"), std::string::npos) << tools.got[1][0].ev.body;
  EXPECT_NE(tools.got[1][0].ev.body.find("cannot reach epsilon"), std::string::npos);
  EXPECT_NE(tools.got[1][0].ev.body.find("not sent"), std::string::npos);
  // A certificate that does not check out (a gateway's forgery) is no better.
  call(1, 6, "epsilon");
  ASSERT_EQ(links.sent.size(), 2u);
  answer(1, R"({"cert":"cert-of-mallory"})");
  EXPECT_EQ(links.sent.size(), 2u);
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_NE(tools.got[1][1].ev.body.find("not accepted"), std::string::npos) << tools.got[1][1].ev.body;
  EXPECT_FALSE(router.waiting());
}

TEST_F(CertLookupTest, AWithdrawnWaitingCallIsNeverSentAndAnUnwantedLookupIsForgotten) {
  call(1, 5, "epsilon");
  ControlMsg m;
  m.type = ControlType::withdraw;
  m.id = 5;
  router.on_tool_msg(1, encode_control(m));
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::withdrawn);
  EXPECT_EQ(tools.got[1][0].verdict, WithdrawVerdict::not_sent);
  EXPECT_TRUE(links.withdraws.empty());  // nothing to take out of a queue
  // Its lookup, wanted by nobody, is taken back once it has waited long.
  router.expire_calls(now_ms() + 120000, 60000);
  ASSERT_EQ(links.withdraws.size(), 1u);
  EXPECT_EQ(links.withdraws[0].event_id, links.sent[0].ev.id);
  EXPECT_FALSE(router.waiting());
  answer(0, R"({"cert":"cert-of-epsilon"})");  // comes anyway: nothing goes
  EXPECT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(tools.got[1].size(), 1u);
}

TEST_F(CertLookupTest, ACallWaitingForALookupOnALinkThatNeverComesUpExpires) {
  call(1, 5, "epsilon");
  router.expire_calls(now_ms() + 120000, 60000);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::error);
  EXPECT_NE(tools.got[1][0].why.find("not sent"), std::string::npos) << tools.got[1][0].why;
}

TEST_F(CertLookupTest, AFanOutsLookupsAndThenItsRequestsGoInOneBundlePerGateway) {
  int scheduled = 0;
  router.use_bundles([&] { ++scheduled; });
  cfg.via["zeta"] = "beta";
  keys.cert_only.insert("zeta");
  call(1, 5, "epsilon");
  call(1, 6, "zeta");
  EXPECT_TRUE(links.sent.empty());
  router.flush_bundles();
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].ev.object, "relay.bundle");
  std::vector<RelayBundleItem> items;
  std::string err;
  ASSERT_TRUE(decode_bundle(links.sent[0].ev.body, items, err)) << err;
  ASSERT_EQ(items.size(), 2u);
  for (auto& i : items) {
    RelayEnvelope env;
    ASSERT_TRUE(decode_envelope(i.envelope, env, err)) << err;
    EXPECT_EQ(env.object, "cert");
    std::string cert = "cert-of-" + env.target;
    router.on_delivered("beta", 1, ++seq_,
                        Event{Kind::reply, i.id, "beta", "alpha", "cert", R"({"cert":")" + cert + R"("})", false});
  }
  EXPECT_EQ(links.sent.size(), 1u);
  router.flush_bundles();
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(links.sent[1].ev.object, "relay.bundle");
  ASSERT_TRUE(decode_bundle(links.sent[1].ev.body, items, err)) << err;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].id != items[1].id, true);
  // The lookups' bundle is forgotten once answered; the requests' stays.
  router.expire_calls(now_ms(), 60000);
  EXPECT_TRUE(router.waiting());
}

TEST_F(CertLookupTest, TheTargetAnswersALookupWithItsCertificate) {
  RelayEnvelope env{"delta", "alpha", "cert", {"beta"}, ""};
  deliver("beta", Event{Kind::call, 77, "beta", "alpha", "relay", encode_envelope(env), false});
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.kind, Kind::reply);
  EXPECT_EQ(links.sent[0].ev.id, 77u);
  EXPECT_EQ(links.sent[0].ev.body, R"({"cert":"cert-of-alpha"})");
  EXPECT_TRUE(local.jobs.empty());
  keys.my_cert.clear();  // none: an error the originator can act on
  deliver("beta", Event{Kind::call, 78, "beta", "alpha", "relay", encode_envelope(env), false});
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_NE(links.sent[1].ev.body.find("no certificate"), std::string::npos) << links.sent[1].ev.body;
}

TEST_F(CertLookupTest, TheOriginatorsCertificateReachesTheKeyCheckAndIsTheOneItSealed) {
  RelayRequest rq{"delta", "alpha", uint64_t(wall_time() * 1000), "0123456789abcdef", Kind::call,
                  "job",   "{}",    cert_hash("cert-of-delta")};
  RelayEnvelope env{"delta", "alpha", "job", {"beta"}, "delta>alpha:" + encode_relay_request(rq), "cert-of-delta"};
  deliver("beta", Event{Kind::call, 77, "beta", "alpha", "relay", encode_envelope(env), false});
  EXPECT_EQ(keys.last_open_cert, "cert-of-delta");
  ASSERT_EQ(local.jobs.size(), 1u);
  EXPECT_EQ(local.jobs[0].from, "delta");
  // A gateway swapping in another certificate of delta's (other groups),
  // or dropping it: refused.
  rq.rid = "fedcba9876543210";
  env.box = "delta>alpha:" + encode_relay_request(rq);
  for (std::string other : {"cert-of-delta-old", ""}) {
    env.cert = other;
    deliver("beta", Event{Kind::call, 78, "beta", "alpha", "relay", encode_envelope(env), false});
  }
  EXPECT_EQ(local.jobs.size(), 1u);
  ASSERT_EQ(keys.refusals.size(), 2u);
  EXPECT_NE(keys.refusals[0].find("another certificate"), std::string::npos) << keys.refusals[0];
}

// A lookup lost with its gateway is asked again when the link is back
// (and when it waited long over a link that is up); a notify parked with a call
// that was taken back does not go alone; a known key that is old is still
// used while it is asked for again.
TEST_F(CertLookupTest, ALostLookupIsAskedAgainAndNothingWaitsForever) {
  call(1, 5, "epsilon");
  ASSERT_EQ(links.sent.size(), 1u);
  uint64_t first = links.sent[0].ev.id;
  router.on_link_state("beta", LinkState::down, "");
  router.on_link_state("beta", LinkState::up, "");
  ASSERT_EQ(links.sent.size(), 2u);  // asked again, under a new id
  EXPECT_NE(links.sent[1].ev.id, first);
  EXPECT_EQ(envelope(links.sent[1].ev).object, "cert");
  answer(0, R"({"cert":"cert-of-epsilon"})");  // the first one's answer: dropped
  EXPECT_EQ(links.sent.size(), 2u);
  // Unanswered for idle_client_s over a link that is up: asked again.
  router.expire_calls(now_ms() + 120000, 60000);
  ASSERT_EQ(links.sent.size(), 3u);
  EXPECT_EQ(envelope(links.sent[2].ev).object, "cert");
  answer(2, R"({"cert":"cert-of-epsilon"})");
  ASSERT_EQ(links.sent.size(), 4u);
  EXPECT_EQ(envelope(links.sent[3].ev).object, "job");
}

TEST_F(CertLookupTest, ANotifyWhoseCallWasTakenBackDoesNotGoAlone) {
  call(1, 5, "epsilon");
  ControlMsg m;
  m.type = ControlType::send;
  m.ev = {Kind::notify, 6, "", "epsilon", "job.stdin", "input", false};
  router.on_tool_msg(1, encode_control(m));
  router.tool_gone(1);
  answer(0, R"({"cert":"cert-of-epsilon"})");
  EXPECT_EQ(links.sent.size(), 1u);  // neither the job nor its input
}

TEST_F(CertLookupTest, AnOldKeyIsUsedWhileItIsAskedForAgain) {
  keys.learnt.insert("epsilon");
  keys.stale.insert("epsilon");
  call(1, 5, "epsilon");
  ASSERT_EQ(links.sent.size(), 2u);  // the refresh and the request, at once
  EXPECT_EQ(envelope(links.sent[0].ev).object, "cert");
  EXPECT_EQ(envelope(links.sent[1].ev).object, "job");
  call(1, 6, "epsilon");  // one refresh at a time
  EXPECT_EQ(links.sent.size(), 3u);
  keys.stale.clear();
  answer(0, R"({"error":"gateway beta cannot reach epsilon"})");  // a failed refresh fails nothing
  EXPECT_TRUE(tools.got[1].empty());
}

}  // namespace

namespace {

// A node known only by the certificate its relayed requests carried may
// run jobs (judged again at their start) while CAs are trusted; its
// certificate's groups count; one whose requests opened with a pinned key
// gets no groups that way.
TEST(PeersRelayed, ANodeCertifiedThroughAGatewayIsAPeerWhileCasAreTrusted) {
  Config cfg;
  cfg.node = "gamma";
  cfg.trusted_cas = {"CA"};
  Peers peers{cfg};
  bool known = true;
  std::string why;
  EXPECT_FALSE(peer_may_run(cfg, peers, "alpha", "b2:a", known, why));  // never heard of
  int64_t now = int64_t(wall_time());
  peers.relayed("alpha", "b2:a", RelayedCert{{"ops"}, "CA", now + 3600});
  why.clear();
  EXPECT_TRUE(peer_may_run(cfg, peers, "alpha", "b2:a", known, why)) << why;
  EXPECT_TRUE(known);
  EXPECT_TRUE(peers.in_group("alpha", "ops"));
  cfg.trusted_cas = {"OTHER"};  // a reload that no longer trusts its CA
  EXPECT_FALSE(peer_may_run(cfg, peers, "alpha", "b2:a", known, why));
  EXPECT_NE(why.find("no longer in trusted_cas"), std::string::npos) << why;
  cfg.trusted_cas = {"OTHER", "CA"};
  peers.relayed("alpha", "b2:a", RelayedCert{{"ops"}, "CA", now - 1});  // its certificate ended
  EXPECT_FALSE(peer_may_run(cfg, peers, "alpha", "b2:a", known, why));
  EXPECT_NE(why.find("expired"), std::string::npos) << why;
  peers.relayed("alpha", "b2:a");  // now by a pinned key: no certificate groups
  EXPECT_EQ(peers.relayed_cert("alpha"), nullptr);
  EXPECT_FALSE(peers.in_group("alpha", "ops"));
}

}  // namespace
