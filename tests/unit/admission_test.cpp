// Admission to the node port (lib/node/admission.h) with an injected clock:
// each bound driven to its edge, one step below and one step past it.
#include "admission.h"

#include <gtest/gtest.h>

#include <string>

namespace jsd {
namespace {

struct AdmissionTest : ::testing::Test {
  uint64_t now = 1000000;
  Admission make(AdmissionLimits l) {
    return Admission(l, [this] { return now; });
  }
};

TEST_F(AdmissionTest, PendingPerAddressIsCapped) {
  AdmissionLimits l;  // the defaults: 32 per address, 50/s (bursts of 100)
  EXPECT_EQ(l.max_pending_per_address, 32u);
  Admission a = make(l);
  for (int i = 0; i < 32; ++i) ASSERT_EQ(a.admit("10.0.0.1"), nullptr) << i;
  const char* why = a.admit("10.0.0.1");
  ASSERT_NE(why, nullptr);
  EXPECT_STREQ(why, "too many handshakes pending from one address");
  // Another address is not affected, and one finished handshake makes room.
  EXPECT_EQ(a.admit("10.0.0.2"), nullptr);
  a.done("10.0.0.1");
  EXPECT_EQ(a.admit("10.0.0.1"), nullptr);
  EXPECT_EQ(a.pending(), 33u);
}

TEST_F(AdmissionTest, PendingInAllIsCapped) {
  AdmissionLimits l;
  l.max_pending = 8;
  Admission a = make(l);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(a.admit("10.0.1." + std::to_string(i)), nullptr);
  EXPECT_STREQ(a.admit("10.0.2.1"), "too many handshakes pending");
  a.done("10.0.1.3");
  EXPECT_EQ(a.admit("10.0.2.1"), nullptr);
}

TEST_F(AdmissionTest, NewConnectionsPerAddressAreRateLimited) {
  AdmissionLimits l;
  EXPECT_EQ(l.per_address_per_second, 50);
  Admission a = make(l);
  // A burst of twice the rate, each handshake finishing at once (so only
  // the bucket can refuse).
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(a.admit("10.0.0.1"), nullptr) << i;
    a.done("10.0.0.1");
  }
  EXPECT_STREQ(a.admit("10.0.0.1"), "too many new connections from one address");
  EXPECT_EQ(a.admit("10.0.0.2"), nullptr);  // per address
  // 50/s: one token every 20 ms, not sooner.
  now += 19;
  EXPECT_NE(a.admit("10.0.0.1"), nullptr);
  now += 1;
  EXPECT_EQ(a.admit("10.0.0.1"), nullptr);
  a.done("10.0.0.1");
  EXPECT_NE(a.admit("10.0.0.1"), nullptr);
  // A second later: 50 more, then no more.
  now += 1000;
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(a.admit("10.0.0.1"), nullptr) << i;
    a.done("10.0.0.1");
  }
  EXPECT_NE(a.admit("10.0.0.1"), nullptr);
}

TEST_F(AdmissionTest, LimitsComeFromTheCaller) {
  AdmissionLimits l;
  l.max_pending_per_address = 2;
  l.per_address_per_second = 1;  // bursts of 2
  Admission a = make(l);
  EXPECT_EQ(a.admit("h"), nullptr);
  EXPECT_EQ(a.admit("h"), nullptr);
  EXPECT_NE(a.admit("h"), nullptr);
  a.done("h");
  a.done("h");
  EXPECT_STREQ(a.admit("h"), "too many new connections from one address");
  now += 1000;
  EXPECT_EQ(a.admit("h"), nullptr);
  l.max_pending_per_address = 1;
  a.set_limits(l);
  now += 1000;
  EXPECT_STREQ(a.admit("h"), "too many handshakes pending from one address");
}

}  // namespace
}  // namespace jsd
