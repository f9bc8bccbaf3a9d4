// One message type per channel: link, pipe and control each round-trip,
// refuse truncation, trailing bytes and unknown types, and never throw.
#include <gtest/gtest.h>

#include "control_msg.h"
#include "link_msg.h"
#include "pipe_msg.h"

using namespace jsd;

namespace {
// Every proper prefix of a message is an error, never a crash.
template <class M, class F>
void every_truncation_fails(const std::string& wire, F decode) {
  for (size_t n = 0; n < wire.size(); ++n) {
    M m;
    std::string err;
    EXPECT_FALSE(decode(std::string_view(wire.data(), n), m, err)) << n;
    EXPECT_FALSE(err.empty()) << n;
  }
  M m;
  std::string err;
  EXPECT_FALSE(decode(wire + "x", m, err));
}
}  // namespace

TEST(LinkMsg, RoundTrips) {
  LinkMsg hello{LinkType::hello};
  hello.node = "alpha";
  hello.instance = 0x1122334455667788ull;
  LinkMsg back;
  std::string err;
  ASSERT_TRUE(decode_link(encode_link(hello), back, err)) << err;
  EXPECT_EQ(back.type, LinkType::hello);
  EXPECT_EQ(back.node, "alpha");
  EXPECT_EQ(back.instance, hello.instance);
  LinkMsg ack{LinkType::ack};
  ack.seq = 77;
  ASSERT_TRUE(decode_link(encode_link(ack), back, err)) << err;
  EXPECT_EQ(back.type, LinkType::ack);
  EXPECT_EQ(back.seq, 77u);
  for (LinkType t : {LinkType::heartbeat, LinkType::heartbeat_ack, LinkType::rekey, LinkType::bye}) {
    ASSERT_TRUE(decode_link(encode_link({t}), back, err)) << err;
    EXPECT_EQ(back.type, t);
  }
  every_truncation_fails<LinkMsg>(encode_link(hello), decode_link);
  every_truncation_fails<LinkMsg>(encode_link(ack), decode_link);
}

TEST(LinkMsg, DataIsReadForItsSeqOnly) {
  std::string wire = encode_data(9, Event{Kind::call, 1, "a", "b", "ping", "{}", false}), err;
  LinkMsg m;
  ASSERT_TRUE(decode_link(wire, m, err)) << err;
  EXPECT_EQ(m.type, LinkType::data);
  EXPECT_EQ(m.seq, 9u);
  EXPECT_FALSE(decode_link(wire.substr(0, 5), m, err));
}

TEST(LinkMsg, UnknownTypesAreRefused) {
  LinkMsg m;
  std::string err;
  for (uint8_t t : {0, 8, 10, 20, 255}) {
    EXPECT_FALSE(decode_link(std::string(1, char(t)), m, err)) << int(t);
    EXPECT_NE(err.find("unknown"), std::string::npos);
  }
  // A pipe or control message is not a link message.
  EXPECT_FALSE(decode_link(encode_pipe(PipeMsg{}), m, err));
}

TEST(PipeMsg, RoundTrips) {
  PipeMsg st;
  st.type = PipeType::state;
  st.state = LinkState::refused;
  st.peer = "beta";
  st.instance = 5;
  st.detail = "key not known for alpha";
  PipeMsg back;
  std::string err;
  ASSERT_TRUE(decode_pipe(encode_pipe(st), back, err)) << err;
  EXPECT_EQ(back.type, PipeType::state);
  EXPECT_EQ(back.state, LinkState::refused);
  EXPECT_EQ(back.peer, "beta");
  EXPECT_EQ(back.instance, 5u);
  EXPECT_EQ(back.detail, st.detail);
  PipeMsg ack;
  ack.type = PipeType::ack;
  ack.seq = 12;
  ASSERT_TRUE(decode_pipe(encode_pipe(ack), back, err)) << err;
  EXPECT_EQ(back.type, PipeType::ack);
  EXPECT_EQ(back.seq, 12u);
  PipeMsg retry;
  retry.type = PipeType::retry;
  ASSERT_TRUE(decode_pipe(encode_pipe(retry), back, err)) << err;
  EXPECT_EQ(back.type, PipeType::retry);
  PipeMsg alive;
  alive.type = PipeType::alive;
  ASSERT_EQ(encode_pipe(alive).size(), 1u);
  ASSERT_TRUE(decode_pipe(encode_pipe(alive), back, err)) << err;
  EXPECT_EQ(back.type, PipeType::alive);
  EXPECT_FALSE(decode_pipe(encode_pipe(alive) + "x", back, err));
  every_truncation_fails<PipeMsg>(encode_pipe(st), decode_pipe);
  every_truncation_fails<PipeMsg>(encode_pipe(ack), decode_pipe);
}

TEST(PipeMsg, WithdrawAndItsAnswerRoundTrip) {
  PipeMsg w;
  w.type = PipeType::withdraw;
  w.seq = 0x0102030405060708ull;
  PipeMsg back;
  std::string err;
  ASSERT_TRUE(decode_pipe(encode_pipe(w), back, err)) << err;
  EXPECT_EQ(back.type, PipeType::withdraw);
  EXPECT_EQ(back.seq, w.seq);
  for (bool dropped : {true, false}) {
    PipeMsg a;
    a.type = PipeType::withdrawn;
    a.seq = 9;
    a.dropped = dropped;
    PipeMsg b;
    ASSERT_TRUE(decode_pipe(encode_pipe(a), b, err)) << err;
    EXPECT_EQ(b.type, PipeType::withdrawn);
    EXPECT_EQ(b.seq, 9u);
    EXPECT_EQ(b.dropped, dropped);
    every_truncation_fails<PipeMsg>(encode_pipe(a), decode_pipe);
  }
  every_truncation_fails<PipeMsg>(encode_pipe(w), decode_pipe);
  PipeMsg big;
  big.type = PipeType::too_big;
  big.seq = 12;
  big.detail = "its request is 1441337 bytes, more than beta reads (its max_frame is 1048576)";
  PipeMsg big_back;
  ASSERT_TRUE(decode_pipe(encode_pipe(big), big_back, err)) << err;
  EXPECT_EQ(big_back.type, PipeType::too_big);
  EXPECT_EQ(big_back.seq, 12u);
  EXPECT_EQ(big_back.detail, big.detail);
  every_truncation_fails<PipeMsg>(encode_pipe(big), decode_pipe);
  // The flag is a boolean: anything else is refused, not read as "dropped".
  PipeMsg a;
  a.type = PipeType::withdrawn;
  std::string wire = encode_pipe(a);
  wire.back() = 2;
  EXPECT_FALSE(decode_pipe(wire, back, err));
  EXPECT_FALSE(decode_pipe(encode_pipe(w) + "x", back, err));
}

TEST(PipeMsg, UnknownStateIsRefused) {
  PipeMsg st;
  st.type = PipeType::state;
  std::string wire = encode_pipe(st), err;
  wire[1] = 0;
  PipeMsg back;
  EXPECT_FALSE(decode_pipe(wire, back, err));
  EXPECT_NE(err.find("link state"), std::string::npos);
  wire[1] = char(kLastLinkState + 1);
  EXPECT_FALSE(decode_pipe(wire, back, err));
}

TEST(PipeMsg, SessionRoundTripsAndIsNotAnOrdinaryMessage) {
  SessionKeys k;
  for (size_t i = 0; i < kKeyBytes; ++i) k.c2s[i] = uint8_t(i), k.s2c[i] = uint8_t(0xff - i);
  k.c2s_n = 1;
  k.s2c_n = 0x0100000000000002ull;
  std::string wire = encode_session(k), err;
  SessionKeys back;
  ASSERT_TRUE(decode_session(wire, back, err)) << err;
  EXPECT_EQ(back.c2s, k.c2s);
  EXPECT_EQ(back.s2c, k.s2c);
  EXPECT_EQ(back.c2s_n, 1u);
  EXPECT_EQ(back.s2c_n, k.s2c_n);
  EXPECT_FALSE(decode_session(wire.substr(0, wire.size() - 1), back, err));
  EXPECT_FALSE(decode_session(wire + "x", back, err));
  PipeMsg m;
  EXPECT_FALSE(decode_pipe(wire, m, err));
}

TEST(ControlMsg, RoundTrips) {
  ControlMsg send;
  send.type = ControlType::send;
  send.durable = true;
  send.ev = {Kind::call, 3, "", "beta", "job", R"({"op":"submit"})", false};
  ControlMsg back;
  std::string err;
  ASSERT_TRUE(decode_control(encode_control(send), back, err)) << err;
  EXPECT_EQ(back.type, ControlType::send);
  EXPECT_TRUE(back.durable);
  EXPECT_EQ(back.ev.to, "beta");
  EXPECT_EQ(back.ev.body, send.ev.body);
  bool durable = false;
  EventView v;
  std::string wire = encode_control(send);  // v views into it
  ASSERT_TRUE(decode_send(wire, durable, v, err)) << err;
  EXPECT_TRUE(durable);
  EXPECT_EQ(v.object, "job");

  ControlMsg error;
  error.type = ControlType::error;
  error.id = 4;
  error.why = "no such peer";
  ASSERT_TRUE(decode_control(encode_control(error), back, err)) << err;
  EXPECT_EQ(back.type, ControlType::error);
  EXPECT_EQ(back.id, 4u);
  EXPECT_EQ(back.why, "no such peer");

  ControlMsg notice;
  notice.type = ControlType::notice;
  notice.id = 5;
  notice.node = "beta";
  notice.state = LinkState::down;
  notice.detail = "connection refused";
  ASSERT_TRUE(decode_control(encode_control(notice), back, err)) << err;
  EXPECT_EQ(back.type, ControlType::notice);
  EXPECT_EQ(back.state, LinkState::down);
  EXPECT_EQ(back.node, "beta");
  EXPECT_EQ(back.detail, "connection refused");

  ControlMsg st;
  st.type = ControlType::status_reply;
  st.status = R"({"node":"alpha"})";
  ASSERT_TRUE(decode_control(encode_control(st), back, err)) << err;
  EXPECT_EQ(back.status, st.status);

  ControlMsg reply;
  reply.type = ControlType::reply;
  reply.ev = {Kind::reply, 3, "beta", "alpha", "job.stdout", std::string("\0x", 2), true};
  ASSERT_TRUE(decode_control(encode_control(reply), back, err)) << err;
  EXPECT_EQ(back.type, ControlType::reply);
  EXPECT_TRUE(back.ev.more);
  EXPECT_EQ(back.ev.body, reply.ev.body);

  for (auto* m : {&send, &error, &notice, &st, &reply})
    every_truncation_fails<ControlMsg>(encode_control(*m), decode_control);
}

TEST(ControlMsg, WithdrawAndItsVerdictsRoundTrip) {
  ControlMsg w;
  w.type = ControlType::withdraw;
  w.id = 1;
  ControlMsg back;
  std::string err;
  ASSERT_TRUE(decode_control(encode_control(w), back, err)) << err;
  EXPECT_EQ(back.type, ControlType::withdraw);
  EXPECT_EQ(back.id, 1u);
  every_truncation_fails<ControlMsg>(encode_control(w), decode_control);
  for (auto v : {WithdrawVerdict::not_sent, WithdrawVerdict::unknown}) {
    ControlMsg a;
    a.type = ControlType::withdrawn;
    a.id = 77;
    a.verdict = v;
    ASSERT_TRUE(decode_control(encode_control(a), back, err)) << err;
    EXPECT_EQ(back.type, ControlType::withdrawn);
    EXPECT_EQ(back.id, 77u);
    EXPECT_EQ(back.verdict, v);
    every_truncation_fails<ControlMsg>(encode_control(a), decode_control);
  }
  // An unknown verdict is refused: a tool must never read "not sent" into it.
  ControlMsg a;
  a.type = ControlType::withdrawn;
  std::string wire = encode_control(a);
  for (char bad : {char(0), char(3), char(255)}) {
    wire.back() = bad;
    EXPECT_FALSE(decode_control(wire, back, err));
    EXPECT_NE(err.find("verdict"), std::string::npos);
  }
}

TEST(ControlMsg, ForeignAndUnknownMessagesAreRefused) {
  ControlMsg m;
  std::string err;
  EXPECT_FALSE(decode_control(encode_link({LinkType::heartbeat}), m, err));
  EXPECT_FALSE(decode_control(std::string(1, char(99)), m, err));
  ControlMsg send;
  send.type = ControlType::send;
  std::string wire = encode_control(send);
  wire[1] = 2;  // unknown send flags
  EXPECT_FALSE(decode_control(wire, m, err));
  EXPECT_NE(err.find("flags"), std::string::npos);
}
