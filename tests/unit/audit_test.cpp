#include "node/audit.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "temp_dir.h"

using namespace jsd;

namespace {
// A fresh directory, removed with everything in it at scope exit.
struct TempDir : jsd_test::TempDir {
  TempDir() : jsd_test::TempDir("audit") {}
};

size_t lines(const std::string& f) {
  std::ifstream in(f);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) {
    EXPECT_TRUE(nlohmann::json::accept(l)) << l;
    ++n;
  }
  return n;
}
}  // namespace

TEST(Audit, AppendsOneJsonLinePerDecisionWithItsTime) {
  TempDir d;
  std::string f = d.path + "/audit.log";
  {
    Audit a(f, 1 << 20);
    std::string err;
    ASSERT_TRUE(a.open(err)) << err;
    EXPECT_TRUE(a.record({{"what", "link"}, {"peer", "alpha"}, {"verdict", "allowed"}}));
    EXPECT_TRUE(a.record({{"what", "job"}, {"peer", "alpha"}, {"verdict", "refused"}}, false));
  }
  EXPECT_EQ(lines(f), 2u);
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(f);
  std::string first;
  std::getline(in, first);
  auto j = nlohmann::json::parse(first);
  EXPECT_EQ(j["peer"], "alpha");
  EXPECT_TRUE(j.contains("time"));
  // Reopened, it appends.
  Audit again(f, 1 << 20);
  std::string err;
  ASSERT_TRUE(again.open(err));
  EXPECT_TRUE(again.record({{"what", "link"}}));
  EXPECT_EQ(lines(f), 3u);
}

TEST(Audit, RotatesBySizeKeepingOneOldFile) {
  TempDir d;
  std::string f = d.path + "/audit.log";
  Audit a(f, 4096);
  std::string err;
  ASSERT_TRUE(a.open(err)) << err;
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(a.record({{"what", "job"}, {"id", std::to_string(i)}, {"pad", std::string(50, 'x')}}));
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_LE(size_t(st.st_size), 4096u);
  ASSERT_EQ(stat((f + ".1").c_str(), &st), 0);
  EXPECT_LE(size_t(st.st_size), 4096u);
  EXPECT_FALSE(std::filesystem::exists(f + ".2"));
  // The newest line is in the current file.
  std::ifstream in(f);
  std::string l, last;
  while (std::getline(in, l)) last = l;
  EXPECT_EQ(nlohmann::json::parse(last)["id"], "199");
}

TEST(Audit, UnopenedLogRefuses) {
  Audit a("/nonexistent-dir/audit.log", 4096);
  std::string err;
  EXPECT_FALSE(a.open(err));
  EXPECT_NE(err.find("cannot open audit log"), std::string::npos);
  EXPECT_FALSE(a.record({{"what", "job"}}));
}
