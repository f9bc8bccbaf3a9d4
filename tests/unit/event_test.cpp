#include "event.h"

#include <gtest/gtest.h>

using namespace jsd;

namespace {
Msg sample() {
  Msg m(MsgType::data);
  m.seq = 42;
  m.instance = 0x1122334455667788ull;
  m.peer = "alpha";
  m.text = "t";
  m.ev = {Kind::call, 7, "alpha", "beta", "ping", R"({"seq":1})"};
  return m;
}
}  // namespace

TEST(Event, RoundTrip) {
  Msg m = sample(), back;
  std::string err;
  ASSERT_TRUE(decode(encode(m), back, err)) << err;
  EXPECT_EQ(back.type, MsgType::data);
  EXPECT_EQ(back.seq, 42u);
  EXPECT_EQ(back.instance, m.instance);
  EXPECT_EQ(back.peer, "alpha");
  EXPECT_EQ(back.ev.kind, Kind::call);
  EXPECT_EQ(back.ev.id, 7u);
  EXPECT_EQ(back.ev.from, "alpha");
  EXPECT_EQ(back.ev.to, "beta");
  EXPECT_EQ(back.ev.object, "ping");
  EXPECT_EQ(back.ev.body, R"({"seq":1})");
  EXPECT_FALSE(back.ev.more);
  m.ev.more = true;
  ASSERT_TRUE(decode(encode(m), back, err)) << err;
  EXPECT_TRUE(back.ev.more);
}

TEST(Event, BinaryBodySurvives) {
  Msg m = sample(), back;
  m.ev.body = std::string("\0\xff\n\x01", 4);
  std::string err;
  ASSERT_TRUE(decode(encode(m), back, err));
  EXPECT_EQ(back.ev.body, m.ev.body);
}

TEST(Event, EveryTruncationIsAnErrorNotACrash) {
  std::string wire = encode(sample());
  for (size_t n = 0; n < wire.size(); ++n) {
    Msg m;
    std::string err;
    EXPECT_FALSE(decode(std::string_view(wire.data(), n), m, err)) << n;
    EXPECT_FALSE(err.empty());
  }
}

TEST(Event, TrailingBytesAreRejected) {
  Msg m;
  std::string err;
  EXPECT_FALSE(decode(encode(sample()) + "x", m, err));
}

TEST(Event, UnknownTypeAndKindAreRejected) {
  std::string wire = encode(sample());
  Msg m;
  std::string err;
  std::string bad = wire;
  bad[0] = 99;
  EXPECT_FALSE(decode(bad, m, err));
  EXPECT_NE(err.find("unknown message type"), std::string::npos);
  // kind byte sits after type(1) seq(8) instance(8) peer(1+5) text(4+1)
  bad = wire;
  bad[1 + 8 + 8 + 6 + 5] = 9;
  EXPECT_FALSE(decode(bad, m, err));
  EXPECT_NE(err.find("unknown event kind"), std::string::npos);
}

TEST(Event, HugeLengthFieldDoesNotAllocate) {
  std::string wire = encode(sample());
  // text length = 0xffffffff
  size_t at = 1 + 8 + 8 + 6;
  for (int i = 0; i < 4; ++i) wire[at + i] = '\xff';
  Msg m;
  std::string err;
  EXPECT_FALSE(decode(wire, m, err));
}

TEST(Event, ValidNames) {
  EXPECT_TRUE(valid_name("beta"));
  EXPECT_TRUE(valid_name("node-1.example_2"));
  EXPECT_TRUE(valid_name("127.0.0.3:4455"));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name("-rf"));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_FALSE(valid_name("a b"));
  EXPECT_FALSE(valid_name("a;rm"));
  EXPECT_FALSE(valid_name(std::string(65, 'a')));
}

TEST(Event, EmptyFieldsAndViewsRoundTrip) {
  Msg m(MsgType::heartbeat), back;  // every string empty
  std::string err;
  ASSERT_TRUE(decode(encode(m), back, err)) << err;
  EXPECT_EQ(back.type, MsgType::heartbeat);
  EXPECT_TRUE(back.ev.body.empty());
  MsgView v;  // views with null data(): must encode without touching them
  v.type = MsgType::data;
  v.seq = 7;
  std::string out;
  encode_view_into(out, v);
  MsgView w;
  ASSERT_TRUE(decode_view(out, w, err)) << err;
  EXPECT_EQ(w.seq, 7u);
  EXPECT_TRUE(w.body.empty());
}

TEST(Event, ViewRewriteKeepsTheBody) {
  Msg m = sample();
  std::string wire = encode(m), err;
  MsgView v;
  ASSERT_TRUE(decode_view(wire, v, err)) << err;
  v.id = 99;
  v.from = "gamma";
  std::string out;
  encode_view_into(out, v);
  Msg back;
  ASSERT_TRUE(decode(out, back, err)) << err;
  EXPECT_EQ(back.ev.id, 99u);
  EXPECT_EQ(back.ev.from, "gamma");
  EXPECT_EQ(back.ev.body, m.ev.body);
}
