// A jsd-client's queue: a withdrawn event is dropped only if no link has
// carried it (what makes jsd-submit's "not run" exact).
#include "out_queue.h"

#include <gtest/gtest.h>

using namespace jsd;

TEST(OutQueue, ReplaysAreSkippedAndAcksPopInOrder) {
  OutQueue q;
  EXPECT_TRUE(q.push(1, "a"));
  EXPECT_TRUE(q.push(2, "b"));
  EXPECT_FALSE(q.push(2, "b"));  // a restarted listener's replay
  EXPECT_TRUE(q.push(3, "c"));
  EXPECT_EQ(q.ack(2), 2u);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.items().front().seq, 3u);
  EXPECT_EQ(q.ack(2), 0u);
}

TEST(OutQueue, OnlyWhatNoLinkCarriedIsWithdrawn) {
  OutQueue q;
  q.push(1, "a");
  q.push(2, "b");
  q.push(3, "c");
  q.carried(2);  // 1 and 2 went on a link (in seq order)
  EXPECT_FALSE(q.withdraw(2));
  EXPECT_FALSE(q.withdraw(1));
  EXPECT_TRUE(q.withdraw(3));
  EXPECT_FALSE(q.withdraw(3));  // gone already
  EXPECT_EQ(q.size(), 2u);
  // Carried once means carried: a later link that has not resent it yet
  // does not make it withdrawable.
  q.push(4, "d");
  q.carried(4);
  q.ack(1);
  EXPECT_FALSE(q.withdraw(4));
}
