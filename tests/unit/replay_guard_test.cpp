// ReplayGuard (lib/node/replay_guard.h): the greatest hello time per peer,
// kept across restarts; a time that is not later is a replay.
#include "replay_guard.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "files.h"
#include "temp_dir.h"

namespace jsd {
namespace {

TEST(ReplayGuard, OnlyLaterTimesPass) {
  ReplayGuard g("");
  std::string err;
  EXPECT_TRUE(g.advance("alpha", 100, err));
  EXPECT_FALSE(g.advance("alpha", 100, err));  // the same message again
  EXPECT_FALSE(g.advance("alpha", 99, err));   // an older one
  EXPECT_TRUE(g.advance("alpha", 101, err));
  EXPECT_TRUE(g.advance("beta", 50, err));  // per peer
  EXPECT_EQ(g.latest("alpha"), 101u);
  EXPECT_EQ(g.latest("gamma"), 0u);
  EXPECT_TRUE(err.empty()) << err;
}

TEST(ReplayGuard, ARestartKeepsTheWindowClosed) {
  jsd_test::TempDir d("replay");
  std::string path = d.file("handshake-times"), err;
  {
    ReplayGuard g(path);
    ASSERT_TRUE(g.load(err)) << err;  // no file yet: a first start
    ASSERT_TRUE(g.advance("alpha", 1000, err));
    ASSERT_TRUE(err.empty()) << err;
    ASSERT_TRUE(g.advance("beta", 7, err));
  }
  ReplayGuard again(path);
  ASSERT_TRUE(again.load(err)) << err;
  EXPECT_FALSE(again.advance("alpha", 1000, err));
  EXPECT_FALSE(again.advance("beta", 6, err));
  EXPECT_TRUE(again.advance("alpha", 1001, err));
  ReplayGuard third(path);
  ASSERT_TRUE(third.load(err)) << err;
  EXPECT_EQ(third.latest("alpha"), 1001u);
}

TEST(ReplayGuard, UnreadableLinesAreSkippedAndSaid) {
  jsd_test::TempDir d("replay");
  std::string path = d.file("handshake-times"), err;
  std::ofstream(path) << "alpha 500\ngarbage\nbeta x\n 12\ngamma 0\ndelta 9\n";
  ReplayGuard g(path);
  EXPECT_FALSE(g.load(err));
  EXPECT_NE(err.find("4 unreadable line(s)"), std::string::npos) << err;
  EXPECT_EQ(g.latest("alpha"), 500u);
  EXPECT_EQ(g.latest("delta"), 9u);
  EXPECT_FALSE(g.advance("alpha", 500, err));
}

TEST(ReplayGuard, AFileThatCannotBeWrittenIsSaidNotFatal) {
  jsd_test::TempDir d("replay");
  ReplayGuard g(d.file("no/such/dir/handshake-times"));
  std::string err;
  EXPECT_TRUE(g.advance("alpha", 5, err));  // the hello was fresh
  EXPECT_NE(err.find("cannot keep handshake times"), std::string::npos) << err;
  EXPECT_FALSE(g.advance("alpha", 5, err));  // and is still remembered in memory
}

}  // namespace
}  // namespace jsd
