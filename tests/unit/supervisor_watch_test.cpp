// SlowWatch: when the job supervisor is reported slow, and when it answers
// again (issue 19: a slow supervisor is reported, not declared gone).
#include "supervisor_watch.h"

#include <gtest/gtest.h>

namespace jsd {

TEST(SlowWatch, NothingWaitingIsNeverSlow) {
  SlowWatch w(5000);
  EXPECT_EQ(w.review(100000, 0, 0, 42), "");
  EXPECT_FALSE(w.slow());
  SupervisorState s = w.state(100000, 100000, 0, 42);
  EXPECT_EQ(s.pid, 42);
  EXPECT_EQ(s.waiting, 0u);
  EXPECT_EQ(s.waiting_ms, 0u);
  EXPECT_FALSE(s.slow);
}

TEST(SlowWatch, SlowAtTheThresholdNotBefore) {
  SlowWatch w(5000);
  EXPECT_EQ(w.review(1000 + 4999, 1000, 3, 42), "");
  EXPECT_FALSE(w.state(1000 + 4999, 1000, 3, 42).slow);
  std::string line = w.review(1000 + 5000, 1000, 3, 42);
  EXPECT_EQ(line,
            "the job supervisor (pid 42) has not answered for 5 s: 3 request(s) wait (it may be stopped, or its "
            "disk stalled); jobs wait for it, nothing is lost");
  EXPECT_TRUE(w.slow());
  SupervisorState s = w.state(1000 + 7000, 1000, 3, 42);
  EXPECT_TRUE(s.slow);
  EXPECT_EQ(s.waiting, 3u);
  EXPECT_EQ(s.waiting_ms, 7000u);
  // Said once, not at every review while it stays slow.
  EXPECT_EQ(w.review(1000 + 9000, 1000, 4, 42), "");
}

TEST(SlowWatch, AnswersAgainWhenTheLateRequestIsAnswered) {
  SlowWatch w(2000);
  ASSERT_NE(w.review(3000, 1000, 1, 7), "");
  // The late start is answered; a newer one waits (sent at 2500).
  EXPECT_EQ(w.review(4000, 2500, 1, 7), "the job supervisor (pid 7) answers again, after 3 s");
  EXPECT_FALSE(w.slow());
  // That one turns late in its turn.
  EXPECT_NE(w.review(4500, 2500, 1, 7), "");
  EXPECT_EQ(w.review(4600, 0, 0, 7), "the job supervisor (pid 7) answers again, after 2 s");
  EXPECT_EQ(w.review(9999, 0, 0, 7), "");
}

TEST(SlowWatch, NoPidNamesNoPid) {
  SlowWatch w(1000);
  EXPECT_EQ(w.review(5000, 1000, 1, 0).rfind("the job supervisor has not answered for 4 s", 0), 0u);
}

}  // namespace jsd
