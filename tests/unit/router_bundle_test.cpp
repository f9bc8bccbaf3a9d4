// Bundles of relayed requests (router_bundle.cpp): a tool's requests
// through one gateway in one turn go as one event; withdrawn whole, the
// rest sent again; too big, sent again one by one; and a gateway handles
// each item as the relay event it stands for.
#include <gtest/gtest.h>

#include "relay.h"
#include "router.h"
#include "router_fakes.h"

using namespace jsd;
using namespace jsd::testing_fakes;

namespace {

struct BundleTest : RelayRouterTest {
  int scheduled = 0;
  BundleTest() {
    cfg.via["epsilon"] = "beta";
    cfg.via["zeta"] = "gamma";
    router.use_bundles([this] { ++scheduled; });
  }
  void call(uint64_t tool, uint64_t id, const std::string& to) {
    ControlMsg m;
    m.type = ControlType::send;
    m.ev = {Kind::call, id, "", to, "job", R"({"op":"submit","job":"hello"})", false};
    router.on_tool_msg(tool, encode_control(m));
  }
  void withdraw(uint64_t tool, uint64_t id) {
    ControlMsg m;
    m.type = ControlType::withdraw;
    m.id = id;
    router.on_tool_msg(tool, encode_control(m));
  }
  std::vector<RelayBundleItem> items_of(const Event& ev) {
    std::vector<RelayBundleItem> items;
    std::string err;
    EXPECT_TRUE(decode_bundle(ev.body, items, err)) << err;
    return items;
  }
  std::string target_of(const std::string& envelope) {
    RelayEnvelope env;
    std::string err;
    EXPECT_TRUE(decode_envelope(envelope, env, err)) << err;
    return env.target;
  }
  // The reply a gateway sends back for the item sent under id.
  void answer(const std::string& gw, uint64_t id, uint64_t seq) {
    router.on_delivered(gw, 1, seq, Event{Kind::reply, id, gw, "alpha", "job", R"({"type":"end"})", false});
  }
};

}  // namespace

TEST_F(BundleTest, ATurnsCallsThroughOneGatewayGoAsOneEvent) {
  call(1, 5, "delta");
  call(1, 6, "epsilon");
  call(1, 7, "zeta");               // through gamma
  EXPECT_TRUE(links.sent.empty());  // gathered until the turn ends
  EXPECT_EQ(scheduled, 1);
  router.flush_bundles();
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.object, "relay.bundle");
  EXPECT_EQ(links.sent[0].ev.kind, Kind::notify);
  auto items = items_of(links.sent[0].ev);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(target_of(items[0].envelope), "delta");
  EXPECT_EQ(target_of(items[1].envelope), "epsilon");
  // Alone through gamma: a plain relay event, as without bundles.
  EXPECT_EQ(links.sent[1].key, "gamma");
  EXPECT_EQ(links.sent[1].ev.object, "relay");
  // Each item's answer comes back under its own id, as its target's.
  answer("beta", items[1].id, 1);
  answer("beta", items[0].id, 2);
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][0].ev.id, 6u);
  EXPECT_EQ(tools.got[1][0].ev.from, "epsilon");
  EXPECT_EQ(tools.got[1][1].ev.id, 5u);
  // The next turn opens a new bundle.
  call(1, 8, "delta");
  EXPECT_EQ(scheduled, 2);
}

TEST_F(BundleTest, TwoToolsCallsGoInBundlesOfTheirOwn) {
  call(1, 5, "delta");
  call(2, 5, "epsilon");
  router.flush_bundles();
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(links.sent[0].ev.object, "relay");
  EXPECT_EQ(links.sent[1].ev.object, "relay");
}

TEST_F(BundleTest, OneCallWithdrawnTakesTheBundleBackAndTheRestGoAgain) {
  call(1, 5, "delta");
  call(1, 6, "epsilon");
  router.flush_bundles();
  ASSERT_EQ(links.sent.size(), 1u);
  uint64_t bundle = links.sent[0].ev.id;
  auto items = items_of(links.sent[0].ev);
  withdraw(1, 5);
  ASSERT_EQ(links.withdraws.size(), 1u);
  EXPECT_EQ(links.withdraws[0].event_id, bundle);  // the link process knows only the bundle
  links.withdraws[0].done(true);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::withdrawn);
  EXPECT_EQ(tools.got[1][0].verdict, WithdrawVerdict::not_sent);
  // epsilon's call goes again, alone: a plain relay event with its id.
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(links.sent[1].ev.object, "relay");
  EXPECT_EQ(links.sent[1].ev.id, items[1].id);
  EXPECT_EQ(target_of(links.sent[1].ev.body), "epsilon");
  // delta's answer, if one came, goes nowhere; epsilon's reaches the tool.
  answer("beta", items[0].id, 1);
  answer("beta", items[1].id, 2);
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][1].ev.id, 6u);
}

TEST_F(BundleTest, WithdrawsOfABundleThatMayHaveLeftAreUnknownAndAnswersStillCome) {
  call(1, 5, "delta");
  call(1, 6, "epsilon");
  router.flush_bundles();
  auto items = items_of(links.sent[0].ev);
  withdraw(1, 5);
  withdraw(1, 6);
  ASSERT_EQ(links.withdraws.size(), 1u);  // one withdraw answers both
  links.withdraws[0].done(false);
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][0].verdict, WithdrawVerdict::unknown);
  EXPECT_EQ(tools.got[1][1].verdict, WithdrawVerdict::unknown);
  EXPECT_EQ(links.sent.size(), 1u);  // nothing sent again
  answer("beta", items[0].id, 1);
  ASSERT_EQ(tools.got[1].size(), 3u);
  EXPECT_EQ(tools.got[1][2].ev.id, 5u);
}

TEST_F(BundleTest, ACallWithdrawnBeforeItsTurnEndsIsNeverSent) {
  call(1, 5, "delta");
  call(1, 6, "epsilon");
  withdraw(1, 5);
  EXPECT_TRUE(links.withdraws.empty());
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].verdict, WithdrawVerdict::not_sent);
  router.flush_bundles();
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(target_of(links.sent[0].ev.body), "epsilon");
}

TEST_F(BundleTest, ABundleTooBigForTheGatewayGoesAgainOneByOne) {
  call(1, 5, "delta");
  call(1, 6, "epsilon");
  router.flush_bundles();
  router.undeliverable("beta", links.sent[0].ev.id, "too big");
  ASSERT_EQ(links.sent.size(), 3u);
  EXPECT_EQ(target_of(links.sent[1].ev.body), "delta");
  EXPECT_EQ(target_of(links.sent[2].ev.body), "epsilon");
  EXPECT_TRUE(tools.got[1].empty());  // nobody heard of an error
  answer("beta", links.sent[2].ev.id, 1);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].ev.id, 6u);
}

TEST_F(BundleTest, ABundleTooBigWhoseToolWentIsNotSentAgain) {
  call(1, 5, "delta");
  call(1, 6, "epsilon");
  router.flush_bundles();
  router.tool_gone(1);  // its calls are taken back: nobody waits for them
  ASSERT_EQ(links.withdraws.size(), 1u);
  router.undeliverable("beta", links.sent[0].ev.id, "too big");
  EXPECT_EQ(links.sent.size(), 1u);  // no job runs that nobody waits for
  links.withdraws[0].done(false);
  EXPECT_EQ(links.sent.size(), 1u);
}

TEST_F(BundleTest, ABundleIsCutAtItsSizeLimit) {
  for (uint64_t i = 0; i < kMaxBundleItems + 3; ++i) call(1, 100 + i, i % 2 ? "delta" : "epsilon");
  router.flush_bundles();
  ASSERT_GE(links.sent.size(), 2u);
  size_t n = 0;
  for (auto& s : links.sent) {
    auto items = items_of(s.ev);
    n += items.size();
    EXPECT_LE(items.size(), kMaxBundleItems);
    EXPECT_LE(s.ev.body.size(), kMaxBundleBytes + 64);  // the bundle's own header
  }
  EXPECT_EQ(n, kMaxBundleItems + 3);
}

TEST_F(BundleTest, AGatewayRelaysEachItemAsItsOwnRequest) {
  keys.gateway = true;
  // beta's bundle: its requests for gamma, and one for alpha itself.
  Event a = relayed("beta", "beta", "gamma", {}, "{}", "aaaaaaaaaaaaaaaa", 70);
  Event b = relayed("beta", "beta", "alpha", {}, R"({"op":"status","id":"x"})", "bbbbbbbbbbbbbbbb", 71);
  std::vector<RelayBundleItem> items{{a.id, Kind::call, a.body}, {b.id, Kind::call, b.body}};
  deliver("beta", Event{Kind::notify, 9, "beta", "alpha", "relay.bundle", encode_bundle(items), false});
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "gamma");
  EXPECT_EQ(links.sent[0].ev.object, "relay");
  ASSERT_EQ(local.jobs.size(), 1u);
  EXPECT_EQ(local.jobs[0].from, "beta");
  local.jobs[0].reply("job", "{}", false);
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(links.sent[1].ev.id, 71u);  // answered under its item's id
  // A malformed bundle: refused and audited, nothing relayed or run.
  deliver("beta", Event{Kind::notify, 10, "beta", "alpha", "relay.bundle", "jsd-bundle-v1\x00", false});
  EXPECT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(local.jobs.size(), 1u);
  ASSERT_EQ(keys.refusals.size(), 1u);
  EXPECT_NE(keys.refusals[0].find("malformed relay bundle"), std::string::npos) << keys.refusals[0];
}
