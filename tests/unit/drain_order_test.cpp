// Guard: a replaced queue-server's pipe is read to the end before its
// successor's events are delivered (drain_in_order, used by LinkServers).
#include "drain_order.h"

#include <gtest/gtest.h>

using namespace jsd;

namespace {
struct FakeSource : DrainSource {
  explicit FakeSource(std::string n) : name(std::move(n)) {}
  std::string name;
  bool is_open = true, paused = false, slow_tool = false;
  bool open() const override { return is_open; }
  bool may_resume() const override { return !slow_tool; }
  void pause() override { paused = true; }
  void resume() override { paused = false; }
};

struct Delivered {
  std::vector<std::string> log;
  std::function<void(DrainSource*, const std::string&)> fn() {
    return [this](DrainSource* s, const std::string& m) { log.push_back(static_cast<FakeSource*>(s)->name + ":" + m); };
  }
};
}  // namespace

TEST(DrainOrder, TheSuccessorWaitsUntilItsPredecessorIsReadToTheEnd) {
  FakeSource old_qs("old"), new_qs("new");
  Delivered d;
  drain_in_order({&old_qs, &new_qs}, d.fn());
  EXPECT_FALSE(old_qs.paused);
  EXPECT_TRUE(new_qs.paused);
  EXPECT_TRUE(new_qs.held);
  // What the new one read meanwhile is kept aside, not delivered.
  new_qs.held_msgs = {"n1", "n2"};
  drain_in_order({&old_qs, &new_qs}, d.fn());
  EXPECT_TRUE(d.log.empty());
  // The old one's pipe is at its end: the new one's events go, in order.
  old_qs.is_open = false;
  drain_in_order({&old_qs, &new_qs}, d.fn());
  EXPECT_EQ(d.log, (std::vector<std::string>{"new:n1", "new:n2"}));
  EXPECT_FALSE(new_qs.held);
  EXPECT_FALSE(new_qs.paused);
}

TEST(DrainOrder, AChainOfReplacementsDrainsOldestFirst) {
  FakeSource a("a"), b("b"), c("c");
  Delivered d;
  drain_in_order({&a, &b, &c}, d.fn());
  EXPECT_TRUE(b.held);
  EXPECT_TRUE(c.held);
  b.held_msgs = {"b1"};
  c.held_msgs = {"c1"};
  // b ends first: c still waits behind a.
  b.is_open = false;
  drain_in_order({&a, &b, &c}, d.fn());
  EXPECT_TRUE(d.log.empty());
  EXPECT_TRUE(c.held);
  a.is_open = false;
  drain_in_order({&a, &b, &c}, d.fn());
  EXPECT_EQ(d.log, (std::vector<std::string>{"b:b1", "c:c1"}));
}

TEST(DrainOrder, AReleasedSourcePausedForASlowToolStaysPaused) {
  FakeSource old_qs("old"), new_qs("new");
  Delivered d;
  drain_in_order({&old_qs, &new_qs}, d.fn());
  new_qs.slow_tool = true;
  old_qs.is_open = false;
  drain_in_order({&old_qs, &new_qs}, d.fn());
  EXPECT_FALSE(new_qs.held);
  EXPECT_TRUE(new_qs.paused);
}
