// The router with fakes for its links, tools, durable store and local
// objects: no loop, no process, no disk.
#include "router.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "control_msg.h"
#include "router_fakes.h"
#include "uvx.h"

using namespace jsd;
using namespace jsd::testing_fakes;
using nlohmann::json;

namespace {

struct RouterTest : testing::Test {
  Config cfg = two_peers();
  Peers peers{cfg};
  FakeLinks links;
  FakeTools tools;
  FakeDurable durable;
  FakeLocal local;
  Router router{"alpha", peers, links, tools, durable, local};

  void tool_sends(uint64_t tool, Kind kind, uint64_t id, const std::string& to, const std::string& object,
                  const std::string& body, bool durable_flag = false) {
    ControlMsg m;
    m.type = ControlType::send;
    m.durable = durable_flag;
    m.ev = {kind, id, "", to, object, body, false};
    router.on_tool_msg(tool, encode_control(m));
  }
  void tool_withdraws(uint64_t tool, uint64_t id) {
    ControlMsg m;
    m.type = ControlType::withdraw;
    m.id = id;
    router.on_tool_msg(tool, encode_control(m));
  }
  // The call the router sent to a link last: its id on the wire.
  uint64_t last_wire_id() { return links.sent.back().ev.id; }
};

}  // namespace

TEST_F(RouterTest, ACallGoesToItsLinkAndTheReplyBackToTheTool) {
  EXPECT_FALSE(router.waiting());  // an idle node's listener need not check for expired calls
  tool_sends(1, Kind::call, 7, "beta", "ping", "{}");
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.from, "alpha");  // the node, whatever the tool said
  EXPECT_TRUE(router.waiting());
  uint64_t id = last_wire_id();
  router.on_delivered("beta", 1, 1, {Kind::reply, id, "beta", "alpha", "ping", "{}", false});
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::reply);
  EXPECT_EQ(tools.got[1][0].ev.id, 7u);  // the tool's own id
  EXPECT_FALSE(router.waiting());
}

// Guard: only the node that was asked may answer (ids are guessable).
TEST_F(RouterTest, AReplyFromANodeThatWasNotAskedIsDropped) {
  tool_sends(1, Kind::call, 7, "beta", "job", "{}");
  uint64_t id = last_wire_id();
  router.on_delivered("gamma", 1, 1, {Kind::reply, id, "gamma", "alpha", "job", R"({"forged":1})", false});
  EXPECT_TRUE(tools.got[1].empty());
  // The real answer still gets through afterwards.
  router.on_delivered("beta", 1, 1, {Kind::reply, id, "beta", "alpha", "job", "{}", false});
  EXPECT_EQ(tools.got[1].size(), 1u);
}

// Guard: an event whose "from" is not the link's peer is refused.
TEST_F(RouterTest, AnEventClaimingAnotherSenderIsDropped) {
  router.on_delivered("beta", 1, 1, {Kind::call, 5, "gamma", "alpha", "job", R"({"op":"submit"})", false});
  EXPECT_TRUE(local.jobs.empty());
  router.on_delivered("beta", 1, 2, {Kind::call, 6, "beta", "alpha", "job", R"({"op":"submit"})", false});
  ASSERT_EQ(local.jobs.size(), 1u);
  EXPECT_EQ(local.jobs[0].from, "beta");
}

// Guard: a resent event (same listener instance, same seq) runs once; a
// restarted peer (new instance) starts its sequence again.
TEST_F(RouterTest, ADuplicateSequenceNumberIsDropped) {
  Event call{Kind::call, 5, "beta", "alpha", "job", R"({"op":"submit"})", false};
  router.on_delivered("beta", 1, 1, call);
  router.on_delivered("beta", 1, 1, call);
  EXPECT_EQ(local.jobs.size(), 1u);
  router.on_delivered("beta", 1, 2, call);
  EXPECT_EQ(local.jobs.size(), 2u);
  router.on_delivered("beta", 2, 1, call);  // beta's listener restarted
  EXPECT_EQ(local.jobs.size(), 3u);
}

TEST_F(RouterTest, ACallFromAPeerIsAnsweredOverItsLink) {
  router.on_delivered("beta", 1, 1, {Kind::call, 5, "beta", "alpha", "job", R"({"op":"status"})", false});
  ASSERT_EQ(local.jobs.size(), 1u);
  local.jobs[0].reply("job", R"({"type":"status"})", false);
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.kind, Kind::reply);
  EXPECT_EQ(links.sent[0].ev.id, 5u);
  EXPECT_EQ(links.sent[0].ev.to, "beta");
}

TEST_F(RouterTest, PingAndStatusAnswerLocally) {
  tool_sends(3, Kind::call, 1, "alpha", "ping", R"({"seq":1})");
  tool_sends(3, Kind::call, 2, "alpha", "status", "");
  tool_sends(3, Kind::call, 3, "alpha", "nosuch", "");
  ASSERT_EQ(tools.got[3].size(), 3u);
  EXPECT_EQ(tools.got[3][0].ev.body, R"({"seq":1})");
  EXPECT_EQ(tools.got[3][1].ev.body, R"({"node":"alpha"})");
  EXPECT_NE(tools.got[3][2].ev.body.find("no object 'nosuch'"), std::string::npos);
  EXPECT_TRUE(links.sent.empty());
}

TEST_F(RouterTest, UnknownTargetsAndBadNamesAreErrorsToTheTool) {
  tool_sends(1, Kind::call, 4, "delta", "ping", "{}");
  tool_sends(1, Kind::call, 5, "beta", "bad/name", "{}");
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::error);
  EXPECT_EQ(tools.got[1][0].id, 4u);
  EXPECT_EQ(tools.got[1][1].type, ControlType::error);
  EXPECT_TRUE(links.sent.empty());
  router.on_tool_msg(1, "garbage");
  EXPECT_EQ(tools.closed, std::vector<uint64_t>{1});
}

TEST_F(RouterTest, DurableSubmissionIsOnDiskBeforeTheToolHearsAndGoesWhenAnswered) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"j1","job":"hello"})", true);
  ASSERT_EQ(durable.log, std::vector<std::string>{"put j1"});
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_NE(tools.got[1][0].ev.body.find("queued_locally"), std::string::npos);
  ASSERT_EQ(links.sent.size(), 1u);
  // The tool may go; the answer still removes the entry.
  router.tool_gone(1);
  router.on_delivered("beta", 1, 1, {Kind::reply, last_wire_id(), "beta", "alpha", "job", "{}", false});
  EXPECT_EQ(durable.log.back(), "remove j1");
  EXPECT_TRUE(durable.entries.empty());
}

// A waiting submission (it streams) is in the outbox before it is sent,
// like --no-wait's, but its tool hears the replies; the first answer takes
// it out of the outbox. Its tool going leaves it to be answered to nobody.
TEST_F(RouterTest, WaitingSubmissionIsInTheOutboxUntilAnsweredAndStreamsToItsTool) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"w1","job":"hello","stream":true})", true);
  ASSERT_EQ(durable.log, std::vector<std::string>{"put w1"});
  EXPECT_TRUE(tools.got[1].empty());  // no "queued_locally": it waits
  ASSERT_EQ(links.sent.size(), 1u);
  uint64_t wire = last_wire_id();
  router.on_delivered("beta", 1, 1, {Kind::reply, wire, "beta", "alpha", "job", R"({"type":"started"})", true});
  EXPECT_EQ(durable.log.back(), "remove w1");
  router.on_delivered("beta", 1, 2, {Kind::reply, wire, "beta", "alpha", "job.stdout", "hi\n", true});
  router.on_delivered("beta", 1, 3, {Kind::reply, wire, "beta", "alpha", "job", R"({"type":"ended"})", false});
  ASSERT_EQ(tools.got[1].size(), 3u);
  EXPECT_EQ(tools.got[1][0].ev.id, 9u);
  EXPECT_EQ(tools.got[1][1].ev.body, "hi\n");
  EXPECT_FALSE(tools.got[1][2].ev.more);
  EXPECT_EQ(durable.log.size(), 2u);

  tool_sends(2, Kind::call, 4, "beta", "job", R"({"op":"submit","id":"w2","job":"hello","stream":true})", true);
  router.tool_gone(2);
  router.on_delivered("beta", 1, 4,
                      {Kind::reply, last_wire_id(), "beta", "alpha", "job", R"({"type":"started"})", true});
  EXPECT_EQ(durable.log.back(), "remove w2");
  EXPECT_TRUE(tools.got[2].empty());
}

// A durable submission whose link broke after it was sent may have been
// acknowledged by a queue-server whose listener died before it kept it: it
// goes again once the link is up (the id makes it run once).
TEST_F(RouterTest, DurableSubmissionGoesAgainAfterABrokenLink) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"r1","job":"hello"})", true);
  ASSERT_EQ(links.sent.size(), 1u);
  router.on_link_state("beta", LinkState::up, "");
  EXPECT_EQ(links.sent.size(), 1u);  // up, never broken: nothing again
  router.on_link_state("beta", LinkState::down, "connection reset");
  router.on_link_state("beta", LinkState::up, "");
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(links.sent[1].ev.body, links.sent[0].ev.body);
  EXPECT_NE(links.sent[1].ev.id, links.sent[0].ev.id);
  router.on_delivered("beta", 1, 1, {Kind::reply, last_wire_id(), "beta", "alpha", "job", "{}", false});
  EXPECT_EQ(durable.log.back(), "remove r1");
  router.on_link_state("beta", LinkState::down, "");
  router.on_link_state("beta", LinkState::up, "");
  EXPECT_EQ(links.sent.size(), 2u);  // answered: never again
}

TEST_F(RouterTest, DurableNeedsAnIdAndAWorkingDisk) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":8})", true);
  durable.fail = true;
  tool_sends(1, Kind::call, 10, "beta", "job", R"({"op":"submit","id":"j2"})", true);
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::error);
  EXPECT_EQ(tools.got[1][1].type, ControlType::error);
  EXPECT_NE(tools.got[1][1].why.find("disk full"), std::string::npos);
  EXPECT_TRUE(links.sent.empty());
}

TEST_F(RouterTest, ARestartedNodeDeliversItsOutboxAgain) {
  durable.entries["j3"] = {"j3", "beta", "job", R"({"op":"submit","id":"j3"})"};
  Router fresh("alpha", peers, links, tools, durable, local);
  fresh.replay_outbox();
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.body, R"({"op":"submit","id":"j3"})");
  fresh.on_delivered("beta", 1, 1, {Kind::reply, last_wire_id(), "beta", "alpha", "job", "{}", false});
  EXPECT_TRUE(durable.entries.empty());
}

TEST_F(RouterTest, ARefusedLinkIsNewsForTheToolsWaitingOnIt) {
  tool_sends(1, Kind::call, 7, "beta", "ping", "{}");
  tool_sends(2, Kind::call, 8, "gamma", "ping", "{}");
  router.on_link_state("beta", LinkState::connecting, "");
  EXPECT_TRUE(tools.got[1].empty());
  router.on_link_state("beta", LinkState::refused, "key not known for alpha");
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::notice);
  EXPECT_EQ(tools.got[1][0].state, LinkState::refused);
  EXPECT_EQ(tools.got[1][0].id, 7u);
  EXPECT_TRUE(tools.got[2].empty());  // gamma's tool waits on another link
}

TEST_F(RouterTest, ASlowToolIsReportedSoItsLinkStopsBeingRead) {
  tool_sends(1, Kind::call, 7, "beta", "job", "{}");
  uint64_t id = last_wire_id();
  EXPECT_EQ(router.on_delivered("beta", 1, 1, {Kind::reply, id, "beta", "alpha", "job.stdout", "x", true}), 0u);
  tools.backlogs[1] = Router::kToolHighWater + 1;
  EXPECT_EQ(router.on_delivered("beta", 1, 2, {Kind::reply, id, "beta", "alpha", "job.stdout", "y", true}), 1u);
}

TEST_F(RouterTest, AGoneToolsRepliesGoNowhere) {
  tool_sends(1, Kind::call, 7, "beta", "ping", "{}");
  uint64_t id = last_wire_id();
  router.tool_gone(1);
  router.on_delivered("beta", 1, 1, {Kind::reply, id, "beta", "alpha", "ping", "{}", false});
  EXPECT_TRUE(tools.got[1].empty());
}

TEST_F(RouterTest, AWithdrawnCallThatNeverLeftIsForgottenAndItsReplyGoesNowhere) {
  tool_sends(1, Kind::call, 7, "beta", "job", R"({"op":"submit","id":"x"})");
  tool_sends(2, Kind::call, 7, "beta", "job", R"({"op":"submit","id":"y"})");  // same tool id, other tool
  uint64_t id = links.sent[0].ev.id;
  tool_withdraws(1, 7);
  // The router asks the link for exactly that call, and answers only when
  // the link process has answered.
  ASSERT_EQ(links.withdraws.size(), 1u);
  EXPECT_EQ(links.withdraws[0].key, "beta");
  EXPECT_EQ(links.withdraws[0].event_id, id);
  EXPECT_TRUE(tools.got[1].empty());
  links.withdraws[0].done(true);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::withdrawn);
  EXPECT_EQ(tools.got[1][0].id, 7u);
  EXPECT_EQ(tools.got[1][0].verdict, WithdrawVerdict::not_sent);
  // Whatever claims to answer the withdrawn call goes nowhere...
  router.on_delivered("beta", 1, 1, {Kind::reply, id, "beta", "alpha", "job", R"({"type":"started"})", true});
  EXPECT_EQ(tools.got[1].size(), 1u);
  // ...and a second withdraw finds nothing in flight: only the node knows.
  tool_withdraws(1, 7);
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][1].verdict, WithdrawVerdict::unknown);
  EXPECT_EQ(links.withdraws.size(), 1u);
  // The other tool's call is untouched.
  router.on_delivered("beta", 1, 2, {Kind::reply, links.sent[1].ev.id, "beta", "alpha", "job", "{}", false});
  ASSERT_EQ(tools.got[2].size(), 1u);
  EXPECT_EQ(tools.got[2][0].type, ControlType::reply);
}

TEST_F(RouterTest, ACallThatMayHaveLeftIsUnknownAndStillAnswered) {
  tool_sends(1, Kind::call, 7, "beta", "job", R"({"op":"submit","id":"x"})");
  uint64_t id = last_wire_id();
  tool_withdraws(1, 7);
  ASSERT_EQ(links.withdraws.size(), 1u);
  links.withdraws[0].done(false);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::withdrawn);
  EXPECT_EQ(tools.got[1][0].verdict, WithdrawVerdict::unknown);
  // It may have reached beta: its answer still goes to the tool.
  router.on_delivered("beta", 1, 1, {Kind::reply, id, "beta", "alpha", "job", R"({"type":"started"})", true});
  EXPECT_EQ(tools.got[1].size(), 2u);
}

TEST_F(RouterTest, OnlyAToolsOwnCallsInFlightCanBeWithdrawn) {
  // Another tool's call, a durable one and a call to this node itself are
  // not "in flight" for this tool: unknown, and no link is asked.
  tool_sends(2, Kind::call, 7, "beta", "job", R"({"op":"submit","id":"x"})");
  tool_sends(1, Kind::call, 8, "beta", "job", R"({"op":"submit","id":"d1","job":"hello"})", true);
  tool_sends(1, Kind::call, 9, "alpha", "ping", "{}");
  tool_withdraws(1, 7);
  tool_withdraws(1, 8);
  tool_withdraws(1, 9);
  EXPECT_TRUE(links.withdraws.empty());
  ASSERT_EQ(tools.got[1].size(), 5u);  // queued_locally, ping reply, 3 verdicts
  for (size_t i = 2; i < 5; ++i) {
    EXPECT_EQ(tools.got[1][i].type, ControlType::withdrawn);
    EXPECT_EQ(tools.got[1][i].verdict, WithdrawVerdict::unknown);
  }
  EXPECT_EQ(durable.entries.count("d1"), 1u);
}

TEST_F(RouterTest, AWithdrawAnsweredAfterTheToolLeftIsHarmless) {
  tool_sends(1, Kind::call, 7, "beta", "job", R"({"op":"submit","id":"x"})");
  tool_withdraws(1, 7);
  router.tool_gone(1);
  // Its own withdraw only: the one under way is not repeated for the tool
  // that went.
  ASSERT_EQ(links.withdraws.size(), 1u);
  links.withdraws[0].done(true);  // the fake tools record it; the listener's drop it
  EXPECT_EQ(tools.got[1].size(), 1u);
}

TEST_F(RouterTest, AToolThatGoesTakesItsQueuedCallsBack) {
  tool_sends(1, Kind::call, 7, "beta", "ping", "{}");
  router.tool_gone(1);
  ASSERT_EQ(links.withdraws.size(), 1u);
  EXPECT_EQ(links.withdraws[0].key, "beta");
  links.withdraws[0].done(true);
  EXPECT_TRUE(tools.got[1].empty());
}

TEST_F(RouterTest, ACallWaitingPastIdleClientSForALinkGetsAnError) {
  tool_sends(1, Kind::call, 7, "beta", "ping", "{}");
  router.on_link_state("beta", LinkState::down, "connection refused");
  router.expire_calls(now_ms(), 60000);  // not yet
  EXPECT_TRUE(links.withdraws.empty());
  router.expire_calls(now_ms() + 60000, 60000);
  ASSERT_EQ(links.withdraws.size(), 1u);
  links.withdraws[0].done(true);
  ASSERT_EQ(tools.got[1].size(), 2u);  // the "down" notice, then the error
  EXPECT_EQ(tools.got[1][1].type, ControlType::error);
  EXPECT_EQ(tools.got[1][1].why,
            "cannot reach beta: connection refused; gave up after 60 s (idle_client_s): the call was not sent");
  // One that may have gone out on a link never expires.
  tool_sends(1, Kind::call, 8, "beta", "ping", "{}");
  router.expire_calls(now_ms() + 60000, 60000);
  ASSERT_EQ(links.withdraws.size(), 2u);
  links.withdraws[1].done(false);
  router.expire_calls(now_ms() + 120000, 60000);
  EXPECT_EQ(links.withdraws.size(), 2u);
}

TEST_F(RouterTest, ADurableSubmissionTheTargetRefusesIsKeptAsRefusedNotResent) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"j4","job":"nosuch"})", true);
  router.on_delivered(
      "beta", 1, 1,
      {Kind::reply, last_wire_id(), "beta", "alpha", "job", R"({"error":"no job 'nosuch' on beta"})", false});
  // The refusal is on record before the entry leaves the outbox.
  EXPECT_EQ(durable.log, (std::vector<std::string>{"put j4", "refuse j4", "remove j4"}));
  auto r = json::parse(durable.refused["j4"]);
  EXPECT_EQ(r["state"], "refused");
  EXPECT_EQ(r["to"], "beta");
  EXPECT_EQ(r["job"], "nosuch");
  EXPECT_EQ(r["error"], "no job 'nosuch' on beta");
  // A restart has nothing left to deliver.
  links.sent.clear();
  router.replay_outbox();
  EXPECT_TRUE(links.sent.empty());
}

// Issue 19: a durable request within the field limits but larger than the
// target reads (its max_frame, said in the handshake): its link process
// keeps it back, and the router answers it as the target's refusal would
// be — kept as refused, out of the outbox, never sent again — and a
// waiting tool hears why; a plain call's tool gets an error.
TEST_F(RouterTest, ACallTooBigForThePeerIsRefusedNotResent) {
  router.on_link_state("beta", LinkState::up, "");  // a --no-wait tool waits for the answer
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"big3","job":"ledger"})", true);
  std::string why = "its request is 1441337 bytes, more than beta reads (its max_frame is 1048576)";
  router.undeliverable("gamma", last_wire_id(), why);  // another link's: not this call
  EXPECT_EQ(durable.log, (std::vector<std::string>{"put big3"}));
  router.undeliverable("beta", last_wire_id(), why);
  EXPECT_EQ(durable.log, (std::vector<std::string>{"put big3", "refuse big3", "remove big3"}));
  EXPECT_EQ(json::parse(durable.refused["big3"])["error"], why);
  ASSERT_FALSE(tools.got[1].empty());
  EXPECT_EQ(tools.got[1].back().type, ControlType::reply);
  EXPECT_EQ(json::parse(tools.got[1].back().ev.body)["error"], why);
  links.sent.clear();
  router.on_link_state("beta", LinkState::down, "");
  router.on_link_state("beta", LinkState::up, "");
  router.replay_outbox();
  EXPECT_TRUE(links.sent.empty());

  tool_sends(2, Kind::call, 4, "beta", "ping", R"({"pad":"x"})", false);
  router.undeliverable("beta", last_wire_id(), why);
  ASSERT_FALSE(tools.got[2].empty());
  EXPECT_EQ(tools.got[2].back().type, ControlType::error);
  EXPECT_EQ(tools.got[2].back().why, why);
}

// Issue 24: a peer answered a durable event with an "error" nested 300,000
// deep; the error path's dump() overflowed the stack, and the entry left in
// the outbox crashed the listener again at every start. Now the answer is
// read through the bounded parser: the entry leaves the outbox, nothing
// recurses, and a restart has nothing to deliver.
TEST_F(RouterTest, ADurableAnswerNestedTooDeepLeavesTheOutboxWithoutACrash) {
  std::string deep = R"({"id":"deep1","error":)" + std::string(300000, '[') + std::string(300000, ']') + "}";
  tool_sends(1, Kind::call, 9, "beta", "ping", R"({"id":"deep1"})", true);
  router.on_delivered("beta", 1, 1, {Kind::reply, last_wire_id(), "beta", "alpha", "ping", deep, false});
  EXPECT_EQ(durable.log, (std::vector<std::string>{"put deep1", "remove deep1"}));
  links.sent.clear();
  router.replay_outbox();
  EXPECT_TRUE(links.sent.empty());
  // The same body sent durably by a tool (to this node itself, whose ping
  // object would echo it): refused before it is queued, with why.
  tool_sends(1, Kind::call, 10, "alpha", "ping", deep, true);
  EXPECT_EQ(durable.log.size(), 2u);
  ASSERT_EQ(tools.got[1].back().type, ControlType::error);
  EXPECT_EQ(tools.got[1].back().why, "a durable event's body is nested deeper than 32 levels");
}

// Issue 24: the outbox files the target as the tool named it, which this
// node resolves again after a restart (it filed the certified peer's
// name "delta", unknown after a restart: the entry stayed for good).
TEST_F(RouterTest, ADurableCallByAddressIsFiledUnderTheAddress) {
  Endpoint at;
  std::string err;
  ASSERT_TRUE(parse_endpoint("127.0.6.21:4455", at, err));
  peers.learn_address("delta", at);
  tool_sends(1, Kind::call, 9, "127.0.6.21:4455", "job", R"({"op":"submit","id":"a1","job":"hello"})", true);
  ASSERT_EQ(durable.entries.count("a1"), 1u);
  EXPECT_EQ(durable.entries["a1"].to, "127.0.6.21:4455");
  ASSERT_FALSE(links.sent.empty());
  EXPECT_EQ(links.sent.back().key, "delta");  // one link per peer, however it is named
  // After a restart (delta not linked yet) the entry goes to the address.
  Peers fresh{cfg};
  Router again{"alpha", fresh, links, tools, durable, local};
  links.sent.clear();
  again.replay_outbox();
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "127.0.6.21:4455");
  // A configured peer's address names that peer, in the outbox too.
  tool_sends(1, Kind::call, 10, "127.0.0.3:4455", "job", R"({"op":"submit","id":"a2","job":"hello"})", true);
  EXPECT_EQ(durable.entries["a2"].to, "127.0.0.3:4455");
  EXPECT_EQ(links.sent.back().key, "beta");
}

TEST_F(RouterTest, StatusOfARefusedIdTheTargetDoesNotKnowSaysWhy) {
  durable.refused["j5"] = R"({"id":"j5","to":"beta","job":"nosuch","state":"refused","error":"no job 'nosuch'"})";
  tool_sends(1, Kind::call, 1, "beta", "job", R"({"op":"status","id":"j5"})");
  router.on_delivered(
      "beta", 1, 1, {Kind::reply, last_wire_id(), "beta", "alpha", "job", R"({"error":"no job 'j5' on beta"})", false});
  ASSERT_EQ(tools.got[1].size(), 1u);
  auto a = json::parse(tools.got[1][0].ev.body);
  EXPECT_EQ(a["type"], "refused");
  EXPECT_EQ(a["record"]["error"], "no job 'nosuch'");
  // The target's own record wins when it has one (the id was resubmitted).
  tool_sends(1, Kind::call, 2, "beta", "job", R"({"op":"status","id":"j5"})");
  std::string rec = R"({"type":"status","record":{"id":"j5","state":"exited"}})";
  router.on_delivered("beta", 1, 2, {Kind::reply, last_wire_id(), "beta", "alpha", "job", rec, false});
  EXPECT_EQ(tools.got[1][1].ev.body, rec);
  // A refusal by another node is not an answer about this one.
  tool_sends(1, Kind::call, 3, "gamma", "job", R"({"op":"status","id":"j5"})");
  std::string none = R"({"error":"no job 'j5' on gamma"})";
  router.on_delivered("gamma", 1, 1, {Kind::reply, last_wire_id(), "gamma", "alpha", "job", none, false});
  EXPECT_EQ(tools.got[1][2].ev.body, none);
}

// issue 7: --no-wait with the link up waits for the target's answer, so a
// refusal reaches the tool; with the link down "queued" is the answer.
TEST_F(RouterTest, ADurableSubmissionOverAnUpLinkWaitsForTheTargetsAnswer) {
  router.on_link_state("beta", LinkState::up, "");
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"w1","job":"nosuch"})", true);
  ASSERT_EQ(tools.got[1].size(), 1u);
  auto q = json::parse(tools.got[1][0].ev.body);
  EXPECT_EQ(q["type"], "queued_locally");
  EXPECT_EQ(q["waiting"], true);
  EXPECT_TRUE(tools.got[1][0].ev.more);  // the answer follows
  router.on_delivered(
      "beta", 1, 1,
      {Kind::reply, last_wire_id(), "beta", "alpha", "job", R"({"error":"no job 'nosuch' on beta"})", false});
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][1].ev.id, 9u);
  EXPECT_FALSE(tools.got[1][1].ev.more);
  EXPECT_EQ(json::parse(tools.got[1][1].ev.body)["error"], "no job 'nosuch' on beta");
  // Kept as refused for --status, as without a waiting tool.
  EXPECT_EQ(durable.log, (std::vector<std::string>{"put w1", "refuse w1", "remove w1"}));

  tool_sends(2, Kind::call, 3, "beta", "job", R"({"op":"submit","id":"w2","job":"hello"})", true);
  std::string accepted = R"({"type":"accepted","record":{"id":"w2","state":"queued"}})";
  router.on_delivered("beta", 1, 2, {Kind::reply, last_wire_id(), "beta", "alpha", "job", accepted, false});
  ASSERT_EQ(tools.got[2].size(), 2u);
  EXPECT_EQ(tools.got[2][1].ev.body, accepted);
  EXPECT_EQ(durable.entries.count("w2"), 0u);
}

TEST_F(RouterTest, ADurableSubmissionOverADownLinkIsAnsweredQueuedAtOnce) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"d1","job":"hello"})", true);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_FALSE(tools.got[1][0].ev.more);
  EXPECT_EQ(json::parse(tools.got[1][0].ev.body)["waiting"], false);
  // The later answer goes nowhere: nobody waits for it.
  router.on_delivered(
      "beta", 1, 1,
      {Kind::reply, last_wire_id(), "beta", "alpha", "job", R"({"error":"no job 'hello' on beta"})", false});
  EXPECT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(durable.refused.count("d1"), 1u);
}

TEST_F(RouterTest, AWaitingToolHearsWhenTheLinkGoesDownAndLeavingIsHarmless) {
  router.on_link_state("beta", LinkState::up, "");
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"g1","job":"hello"})", true);
  router.on_link_state("beta", LinkState::down, "connection reset");
  ASSERT_EQ(tools.got[1].size(), 2u);
  auto q = json::parse(tools.got[1][1].ev.body);
  EXPECT_EQ(q["type"], "queued_locally");
  EXPECT_EQ(q["waiting"], false);
  EXPECT_FALSE(tools.got[1][1].ev.more);
  EXPECT_EQ(durable.entries.count("g1"), 1u);  // still queued, delivered later
  // A tool that left before the answer: the entry is answered all the same.
  router.on_link_state("beta", LinkState::up, "");
  tool_sends(2, Kind::call, 4, "beta", "job", R"({"op":"submit","id":"g2","job":"hello"})", true);
  router.tool_gone(2);
  router.on_delivered("beta", 1, 1,
                      {Kind::reply, last_wire_id(), "beta", "alpha", "job", R"({"type":"accepted"})", false});
  EXPECT_EQ(tools.got[2].size(), 1u);
  EXPECT_EQ(durable.entries.count("g2"), 0u);
}

// idle_client_s (issue 7) meets the durable waiting submission (issue 8):
// a waiting jsd-submit's call that never left this node's queue is taken
// back after max_ms without a link, out of the outbox too (so a restart does
// not send what its tool was told was not sent); a --no-wait one stays, for
// as long as its link takes.
TEST_F(RouterTest, AWaitingSubmissionNeverSentExpiresAndLeavesTheOutbox) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"w1","job":"hello","stream":true})", true);
  tool_sends(2, Kind::call, 4, "beta", "job", R"({"op":"submit","id":"n1","job":"hello"})", true);
  ASSERT_EQ(durable.entries.size(), 2u);
  router.expire_calls(now_ms(), 60000);  // not yet
  EXPECT_TRUE(links.withdraws.empty());
  router.expire_calls(now_ms() + 61000, 60000);
  ASSERT_EQ(links.withdraws.size(), 1u);
  links.withdraws[0].done(true);  // still in the queue: taken out
  ASSERT_FALSE(tools.got[1].empty());
  EXPECT_EQ(tools.got[1].back().type, ControlType::error);
  EXPECT_NE(tools.got[1].back().why.find("the call was not sent"), std::string::npos) << tools.got[1].back().why;
  EXPECT_EQ(durable.entries.count("w1"), 0u);
  EXPECT_EQ(durable.entries.count("n1"), 1u);
  router.expire_calls(now_ms() + 3600000, 60000);
  EXPECT_EQ(links.withdraws.size(), 1u);  // the --no-wait one is never expired
}

// Issue 19: a waiting re-submission of an id whose first copy is still in
// the outbox joins it (a call resuming the id from the start of its output,
// after the first copy on the same link) instead of "cannot queue durably";
// a --no-wait one is queued already. Nothing is kept twice.
TEST_F(RouterTest, ARetryWhileTheFirstCopyIsInTheOutboxJoinsIt) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"j9","job":"hello","stream":false})", true);
  ASSERT_EQ(links.sent.size(), 1u);
  tool_sends(2, Kind::call, 4, "beta", "job", R"({"op":"submit","id":"j9","job":"hello","stream":true})", true);
  EXPECT_TRUE(tools.got[2].empty());  // no error: it waits for the job's answers
  ASSERT_EQ(links.sent.size(), 2u);
  EXPECT_EQ(links.sent[1].key, "beta");
  json body = json::parse(links.sent[1].ev.body);
  EXPECT_EQ(body["resume"], true);
  EXPECT_EQ(body["stdout_from"], 0);
  EXPECT_EQ(body["id"], "j9");
  EXPECT_EQ(durable.log, std::vector<std::string>{"put j9"});
  uint64_t wire = last_wire_id();
  router.on_delivered("beta", 1, 1, {Kind::reply, wire, "beta", "alpha", "job.stdout", "out\n", true});
  router.on_delivered("beta", 1, 2, {Kind::reply, wire, "beta", "alpha", "job", R"({"type":"ended"})", false});
  ASSERT_EQ(tools.got[2].size(), 2u);
  EXPECT_EQ(tools.got[2][0].ev.id, 4u);
  EXPECT_EQ(tools.got[2][0].ev.body, "out\n");
  // --no-wait again: queued, as asked.
  tool_sends(3, Kind::call, 5, "beta", "job", R"({"op":"submit","id":"j9","job":"hello","stream":false})", true);
  ASSERT_EQ(tools.got[3].size(), 1u);
  EXPECT_EQ(tools.got[3][0].type, ControlType::reply);
  EXPECT_NE(tools.got[3][0].ev.body.find("queued_locally"), std::string::npos);
  EXPECT_EQ(links.sent.size(), 2u);
}

// Issue 19: a waiting submission sent again after a broken link (no answer
// had come) resumes: a node that ran it meanwhile attaches its submitter to
// the kept output and end instead of "already ran there; not run again".
TEST_F(RouterTest, AWaitingSubmissionSentAgainResumesFromTheStart) {
  tool_sends(1, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"w5","job":"hello","stream":true})", true);
  tool_sends(2, Kind::call, 9, "beta", "job", R"({"op":"submit","id":"n5","job":"hello","stream":false})", true);
  router.on_link_state("beta", LinkState::down, "connection reset");
  router.on_link_state("beta", LinkState::up, "");
  std::map<std::string, json> again;
  for (size_t i = 2; i < links.sent.size(); ++i) {
    json b = json::parse(links.sent[i].ev.body);
    again[b["id"]] = b;
  }
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again["w5"]["resume"], true);
  EXPECT_EQ(again["w5"]["stdout_from"], 0);
  EXPECT_EQ(again["w5"]["stderr_from"], 0);
  EXPECT_FALSE(again["n5"].contains("resume"));  // nobody waits: a duplicate answer settles it
}

// Issue 19: a request no node takes (an argv element over kMaxArgBytes,
// which its target's link could not even carry) is refused before it is
// kept; one kept by an older version is refused for good at the next
// start, kept as the id's answer, and never sent.
TEST_F(RouterTest, AnOversizedDurableRequestIsRefusedHereForGood) {
  json big = {{"op", "submit"}, {"id", "big1"}, {"argv", {"/bin/echo", std::string(kMaxArgBytes + 1, 'a')}}};
  tool_sends(1, Kind::call, 9, "beta", "job", big.dump(), true);
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].type, ControlType::error);
  EXPECT_NE(tools.got[1][0].why.find("job big1 not queued for beta: an argv element of"), std::string::npos)
      << tools.got[1][0].why;
  EXPECT_TRUE(durable.log.empty());
  EXPECT_TRUE(links.sent.empty());

  big["id"] = "big2";
  durable.entries["big2"] = {"big2", "beta", "job", big.dump()};
  router.replay_outbox();
  EXPECT_TRUE(links.sent.empty());
  EXPECT_TRUE(durable.entries.empty());
  ASSERT_EQ(durable.refused.count("big2"), 1u);
  json r = json::parse(durable.refused["big2"]);
  EXPECT_EQ(r["state"], "refused");
  EXPECT_EQ(r["to"], "beta");
  EXPECT_EQ(r["job"], "(adhoc)");
}

// Issue 24: a certified peer (mallory) that announces another node's
// address (delta's) while it connects from its own host is reached at its
// own host; a call to delta's address does not resolve to it, and goes to
// the address (whoever answers there).
TEST(PeersAddress, AnAnnouncedHostCountsOnlyIfTheLinkComesFromIt) {
  Endpoint announced;
  std::string err, warning;
  ASSERT_TRUE(parse_endpoint("127.0.6.21:4455", announced, err));
  Endpoint at = reached_at(announced, "127.0.6.30:40123", warning);
  EXPECT_EQ(at.str(), "127.0.6.30:4455");
  EXPECT_NE(warning.find("announced the address 127.0.6.21:4455 but connects from 127.0.6.30"), std::string::npos)
      << warning;
  Config cfg = two_peers();
  Peers peers{cfg};
  peers.learn_address("mallory", at);
  Target t;
  ASSERT_TRUE(peers.resolve("127.0.6.21:4455", t, err)) << err;
  EXPECT_EQ(t.name, "");
  EXPECT_EQ(t.key(), "127.0.6.21:4455");
  // From the host it announced: that is where it is (no warning).
  warning.clear();
  EXPECT_EQ(reached_at(announced, "127.0.6.21:50000", warning).str(), "127.0.6.21:4455");
  EXPECT_TRUE(warning.empty());
  // 0.0.0.0: wherever it connects from, without a warning.
  ASSERT_TRUE(parse_endpoint("0.0.0.0:4455", announced, err));
  EXPECT_EQ(reached_at(announced, "127.0.6.30:1", warning).str(), "127.0.6.30:4455");
  EXPECT_TRUE(warning.empty());
}

// An address names one node: the peer that links from it last.
TEST(PeersAddress, AnAddressNamesTheLastPeerLearntThere) {
  Config cfg = two_peers();
  Peers peers{cfg};
  Endpoint at;
  std::string err;
  ASSERT_TRUE(parse_endpoint("127.0.6.21:4455", at, err));
  peers.learn_address("mallory", at);
  peers.learn_address("delta", at);
  Target t;
  ASSERT_TRUE(peers.resolve("127.0.6.21:4455", t, err)) << err;
  EXPECT_EQ(t.name, "delta");
  EXPECT_EQ(peers.learnt_address("mallory"), nullptr);
}

// Relayed requests (gateways): RelayRouterTest and its fakes are in
// router_fakes.h (router_bundle_test.cpp uses them too).

TEST_F(RelayRouterTest, ACallToAViaPeerIsSealedForItAndGoesOverItsGatewaysLink) {
  ControlMsg m;
  m.type = ControlType::send;
  m.ev = {Kind::call, 5, "", "delta", "job", R"({"op":"submit","job":"hello"})", false};
  router.on_tool_msg(1, encode_control(m));
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.object, "relay");
  RelayEnvelope env;
  std::string err;
  ASSERT_TRUE(decode_envelope(links.sent[0].ev.body, env, err)) << err;
  EXPECT_EQ(env.origin, "alpha");
  EXPECT_EQ(env.target, "delta");
  EXPECT_TRUE(env.via.empty());
  std::string head = "alpha>delta:";
  ASSERT_EQ(env.box.substr(0, head.size()), head);
  RelayRequest rq;
  ASSERT_TRUE(decode_relay_request(env.box.substr(head.size()), rq, err)) << err;
  EXPECT_EQ(rq.body, R"({"op":"submit","job":"hello"})");
  // Its reply comes back from beta under the id it was sent with.
  router.on_delivered("beta", 1, 1,
                      Event{Kind::reply, links.sent[0].ev.id, "beta", "alpha", "job", R"({"type":"end"})", false});
  ASSERT_EQ(tools.got[1].size(), 1u);
  EXPECT_EQ(tools.got[1][0].ev.id, 5u);
  EXPECT_EQ(tools.got[1][0].ev.body, R"({"type":"end"})");
  // No key for a via peer: one error, nothing sent.
  m.ev.to = "nokey";
  router.on_tool_msg(1, encode_control(m));
  EXPECT_EQ(links.sent.size(), 1u);
  ASSERT_EQ(tools.got[1].size(), 2u);
  EXPECT_EQ(tools.got[1][1].type, ControlType::error);
}

TEST_F(RelayRouterTest, AGatewayForwardsAndRelaysRepliesBack) {
  keys.gateway = true;
  deliver("beta", relayed("beta", "beta", "gamma", {}, "{}"));
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "gamma");
  RelayEnvelope env;
  std::string err;
  ASSERT_TRUE(decode_envelope(links.sent[0].ev.body, env, err)) << err;
  EXPECT_EQ(env.via, std::vector<std::string>{"alpha"});
  uint64_t fwd = links.sent[0].ev.id;
  router.on_delivered("gamma", 1, 1, Event{Kind::reply, fwd, "gamma", "alpha", "job.stdout", "out", true});
  router.on_delivered("gamma", 1, 2, Event{Kind::reply, fwd, "gamma", "alpha", "job", "{}", false});
  ASSERT_EQ(links.sent.size(), 3u);
  EXPECT_EQ(links.sent[1].key, "beta");
  EXPECT_EQ(links.sent[1].ev.id, 77u);
  EXPECT_EQ(links.sent[1].ev.body, "out");
  EXPECT_TRUE(links.sent[1].ev.more);
  EXPECT_FALSE(links.sent[2].ev.more);
  // Only gamma answers for it: beta's claim to is dropped.
  deliver("beta", relayed("beta", "beta", "gamma", {}, "{}", "fedcba9876543210", 78));
  router.on_delivered("beta", 1, 99, Event{Kind::reply, links.sent.back().ev.id, "beta", "alpha", "job", "{}", false});
  EXPECT_EQ(links.sent.size(), 4u);
}

TEST_F(RelayRouterTest, ANodeThatIsNoGatewayRefusesToRelay) {
  deliver("beta", relayed("beta", "beta", "gamma", {}, "{}"));
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.kind, Kind::reply);
  EXPECT_NE(links.sent[0].ev.body.find("not a gateway"), std::string::npos) << links.sent[0].ev.body;
  ASSERT_EQ(keys.refusals.size(), 1u);
}

TEST_F(RelayRouterTest, TheTargetActsAsTheOriginatorOnceAndRefusesForgeries) {
  // delta's request through beta: run as delta's, with via.
  deliver("beta", relayed("delta", "delta", "alpha", {"beta"}, R"({"op":"status","id":"x"})"));
  ASSERT_EQ(local.jobs.size(), 1u);
  EXPECT_EQ(local.jobs[0].from, "delta");
  EXPECT_EQ(local.vias[0], std::vector<std::string>{"beta"});
  local.jobs[0].reply("job", R"({"type":"status"})", false);
  ASSERT_EQ(links.sent.size(), 1u);
  EXPECT_EQ(links.sent[0].key, "beta");
  EXPECT_EQ(links.sent[0].ev.id, 77u);
  // The same request again: a replay.
  deliver("beta", relayed("delta", "delta", "alpha", {"beta"}, R"({"op":"status","id":"x"})"));
  EXPECT_EQ(local.jobs.size(), 1u);
  // Sealed by beta, claiming delta.
  deliver("beta", relayed("beta", "delta", "alpha", {"beta"}, "{}", "1111111111111111"));
  // A last hop that is not the link it came over.
  Event ev = relayed("delta", "delta", "alpha", {"gamma"}, "{}", "2222222222222222");
  ev.from = "beta";
  deliver("beta", ev);
  EXPECT_EQ(local.jobs.size(), 1u);
  ASSERT_EQ(keys.refusals.size(), 3u);
  EXPECT_NE(keys.refusals[0].find("a replay"), std::string::npos);
  EXPECT_NE(keys.refusals[1].find("not sealed with delta"), std::string::npos);
  EXPECT_NE(keys.refusals[2].find("last hop"), std::string::npos);
  // Each refusal answered with an error to the link it came over.
  ASSERT_EQ(links.sent.size(), 4u);
  for (size_t i = 1; i < 4; ++i) EXPECT_NE(links.sent[i].ev.body.find("error"), std::string::npos);
}
