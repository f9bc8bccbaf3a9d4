#include "node_output.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

using namespace jsd;

TEST(NodeOutput, PrefixesWholeLinesAndKeepsPartialOnes) {
  std::string partial;
  EXPECT_EQ(prefix_lines("beta", partial, "one\ntw", false), "beta: one\n");
  EXPECT_EQ(partial, "tw");
  EXPECT_EQ(prefix_lines("beta", partial, "o\nthree\n", false), "beta: two\nbeta: three\n");
  EXPECT_EQ(partial, "");
  EXPECT_EQ(prefix_lines("beta", partial, "no newline", false), "");
  EXPECT_EQ(prefix_lines("beta", partial, "", true), "beta: no newline\n");
  EXPECT_EQ(prefix_lines("beta", partial, "", true), "");
}

TEST(NodeOutput, AnEndlessLineIsCutNotHeld) {
  std::string partial;
  std::string big(kMaxLine * 2 + 10, 'x');
  std::string out = prefix_lines("b", partial, big, false);
  EXPECT_EQ(out, "b: " + std::string(kMaxLine, 'x') + "\nb: " + std::string(kMaxLine, 'x') + "\n");
  EXPECT_EQ(partial.size(), 10u);
}

TEST(NodeOutput, GatherGroupsIdenticalOutputsInOrder) {
  std::string g = gather_text({{"beta", "hello\n"}, {"gamma", "other\n"}, {"delta", "hello\n"}, {"eps", ""}});
  EXPECT_EQ(g,
            "----------------\nbeta,delta\n----------------\nhello\n"
            "----------------\ngamma\n----------------\nother\n");
  EXPECT_EQ(gather_text({{"beta", "no newline"}}), "----------------\nbeta\n----------------\nno newline\n");
  EXPECT_EQ(gather_text({}), "");
}

TEST(NodeOutput, StreamsGoToTheirOwnDescriptors) {
  int out[2], err[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_EQ(pipe(err), 0);
  {
    NodeOutput o(false, out[1], err[1]);
    o.data("beta", 0, "a\nb");
    o.data("gamma", 1, "e\n");
    o.data("beta", 1, "f");
    o.node_done("beta");
  }
  close(out[1]);
  close(err[1]);
  char buf[256];
  ssize_t n = read(out[0], buf, sizeof buf);
  EXPECT_EQ(std::string(buf, size_t(n)), "beta: a\nbeta: b\n");
  n = read(err[0], buf, sizeof buf);
  EXPECT_EQ(std::string(buf, size_t(n)), "gamma: e\nbeta: f\n");
  close(out[0]);
  close(err[0]);
}

TEST(NodeOutput, GatherPrintsAtTheEndPerStream) {
  int out[2], err[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_EQ(pipe(err), 0);
  NodeOutput o(true, out[1], err[1]);
  o.data("beta", 0, "same\n");
  o.data("gamma", 0, "sa");
  o.data("gamma", 0, "me\n");
  o.data("gamma", 1, "warn\n");
  o.node_done("beta");
  o.finish({"gamma", "beta"});
  close(out[1]);
  close(err[1]);
  char buf[256];
  ssize_t n = read(out[0], buf, sizeof buf);
  EXPECT_EQ(std::string(buf, size_t(n)), "----------------\ngamma,beta\n----------------\nsame\n");
  n = read(err[0], buf, sizeof buf);
  EXPECT_EQ(std::string(buf, size_t(n)), "----------------\ngamma\n----------------\nwarn\n");
  close(out[0]);
  close(err[0]);
}
