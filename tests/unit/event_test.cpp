// The event encoding and the data message shared by links and pipes.
#include "event.h"

#include <gtest/gtest.h>

using namespace jsd;

namespace {
Event sample() { return {Kind::call, 7, "alpha", "beta", "ping", R"({"seq":1})", false}; }

void expect_same(const EventView& a, const Event& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.object, b.object);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.more, b.more);
}
}  // namespace

TEST(Event, DataRoundTrip) {
  Event e = sample();
  for (bool more : {false, true}) {
    e.more = more;
    std::string wire = encode_data(42, e), err;
    uint64_t seq = 0;
    EventView v;
    ASSERT_TRUE(decode_data(wire, seq, v, err)) << err;
    EXPECT_EQ(seq, 42u);
    expect_same(v, e);
    EXPECT_EQ(to_event(v).body, e.body);
  }
}

TEST(Event, BinaryBodySurvives) {
  Event e = sample();
  e.body = std::string("\0\xff\n\x01", 4);
  std::string wire = encode_data(1, e), err;
  uint64_t seq;
  EventView v;
  ASSERT_TRUE(decode_data(wire, seq, v, err));
  EXPECT_EQ(v.body, e.body);
}

TEST(Event, EveryTruncationIsAnErrorNotACrash) {
  std::string wire = encode_data(3, sample());
  for (size_t n = 0; n < wire.size(); ++n) {
    uint64_t seq;
    EventView v;
    std::string err;
    EXPECT_FALSE(decode_data(std::string_view(wire.data(), n), seq, v, err)) << n;
    EXPECT_FALSE(err.empty());
  }
}

TEST(Event, TrailingBytesAreRejected) {
  uint64_t seq;
  EventView v;
  std::string err;
  EXPECT_FALSE(decode_data(encode_data(3, sample()) + "x", seq, v, err));
  EXPECT_NE(err.find("trailing"), std::string::npos);
}

TEST(Event, UnknownTypeKindAndFlagsAreRejected) {
  std::string wire = encode_data(3, sample()), err;
  uint64_t seq;
  EventView v;
  std::string bad = wire;
  bad[0] = 99;
  EXPECT_FALSE(decode_data(bad, seq, v, err));
  EXPECT_FALSE(peek_data_seq(bad, seq));
  bad = wire;
  bad[9] = 9;  // the kind: after type(1) and seq(8)
  EXPECT_FALSE(decode_data(bad, seq, v, err));
  EXPECT_NE(err.find("unknown event kind"), std::string::npos);
  bad = wire;
  bad.back() = 2;  // flags
  EXPECT_FALSE(decode_data(bad, seq, v, err));
  EXPECT_NE(err.find("flags"), std::string::npos);
}

TEST(Event, HugeLengthFieldDoesNotAllocate) {
  Event e = sample();
  e.body.clear();
  std::string wire = encode_data(1, e), err;
  // The body length sits just before the flags byte.
  for (int i = 2; i <= 5; ++i) wire[wire.size() - i] = '\xff';
  uint64_t seq;
  EventView v;
  EXPECT_FALSE(decode_data(wire, seq, v, err));
}

TEST(Event, PeekSeqIsTheOnePlaceSeqIsRead) {
  std::string wire = encode_data(0x0102030405060708ull, sample());
  uint64_t seq = 0;
  ASSERT_TRUE(peek_data_seq(wire, seq));
  EXPECT_EQ(seq, 0x0102030405060708ull);
  EXPECT_FALSE(peek_data_seq(wire.substr(0, 8), seq));
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

TEST(Event, EmptyViewsEncodeWithoutTouchingNullData) {
  EventView v;  // views with null data()
  std::string out, err;
  encode_data_into(out, 7, v);
  uint64_t seq;
  EventView w;
  ASSERT_TRUE(decode_data(out, seq, w, err)) << err;
  EXPECT_EQ(seq, 7u);
  EXPECT_TRUE(w.body.empty());
}

TEST(Event, ViewRewriteKeepsTheBody) {
  Event e = sample();
  std::string wire = encode_data(5, e), err;
  uint64_t seq;
  EventView v;
  ASSERT_TRUE(decode_data(wire, seq, v, err)) << err;
  v.id = 99;
  v.from = "gamma";
  std::string out;
  encode_data_into(out, 6, v);
  EventView back;
  ASSERT_TRUE(decode_data(out, seq, back, err)) << err;
  EXPECT_EQ(seq, 6u);
  EXPECT_EQ(back.id, 99u);
  EXPECT_EQ(back.from, "gamma");
  EXPECT_EQ(back.body, e.body);
}
