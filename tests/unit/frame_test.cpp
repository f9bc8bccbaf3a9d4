#include "frame.h"

#include <gtest/gtest.h>

using namespace jsd;

TEST(Frame, RoundTripSplitAcrossReads) {
  std::string wire = make_frame("hello") + make_frame("") + make_frame(std::string(1000, 'x'));
  FrameDecoder d;
  std::vector<std::string> got;
  for (char c : wire) {  // one byte at a time: the worst a socket can do
    d.feed(&c, 1);
    std::string_view p;
    while (d.next(p) == FrameDecoder::Result::frame) got.emplace_back(p);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "hello");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], std::string(1000, 'x'));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Frame, HeaderIsBigEndianLength) {
  std::string f = make_frame("abc");
  ASSERT_EQ(f.size(), 7u);
  EXPECT_EQ(f.substr(0, 4), std::string("\0\0\0\3", 4));
}

TEST(Frame, OversizedFrameIsRejectedBeforeBuffering) {
  FrameDecoder d(16);
  std::string hdr("\x00\x00\x01\x00", 4);  // announces 256 bytes
  d.feed(hdr.data(), hdr.size());
  std::string_view p;
  EXPECT_EQ(d.next(p), FrameDecoder::Result::too_large);
  EXPECT_EQ(d.announced(), 256u);
}

TEST(Frame, FrameAtTheLimitIsAccepted) {
  FrameDecoder d(16);
  std::string f = make_frame(std::string(16, 'a'));
  d.feed(f.data(), f.size());
  std::string_view p;
  EXPECT_EQ(d.next(p), FrameDecoder::Result::frame);
  EXPECT_EQ(p.size(), 16u);
}

TEST(Frame, TruncatedFrameWaitsForMore) {
  FrameDecoder d;
  std::string f = make_frame("hello");
  d.feed(f.data(), f.size() - 1);
  std::string_view p;
  EXPECT_EQ(d.next(p), FrameDecoder::Result::need_more);
  d.feed(f.data() + f.size() - 1, 1);
  EXPECT_EQ(d.next(p), FrameDecoder::Result::frame);
  EXPECT_EQ(p, "hello");
}
