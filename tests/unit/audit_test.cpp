#include "node/audit.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

// Issue 24: refused handshakes are aggregated, one line per source and
// reason per interval with the count of the others.
TEST(Audit, RefusalsAreOneLinePerSourceAndReasonPerInterval) {
  TempDir d;
  std::string f = d.path + "/audit-refused.log";
  Audit a(f, 1 << 20);
  std::string err;
  ASSERT_TRUE(a.open(err)) << err;
  auto refusal = [](const std::string& addr) {
    return nlohmann::json{{"what", "link"}, {"address", addr}, {"verdict", "refused"}, {"reason", "key not known"}};
  };
  {
    AuditRefusals r(a, 60000);
    for (int i = 0; i < 100; ++i)
      r.add(refusal("10.0.0.1:" + std::to_string(1000 + i)), "10.0.0.1", "key not known", uint64_t(1000 + i));
    r.add(refusal("10.0.0.2:5000"), "10.0.0.2", "key not known", 1500);
    r.add(refusal("10.0.0.2:5001"), "10.0.0.2", "another reason", 1500);
    EXPECT_EQ(lines(f), 3u);
    r.flush(1000 + 59999);  // the interval has not ended
    EXPECT_EQ(lines(f), 3u);
    r.flush(61000);  // 10.0.0.1's 99 more; nothing more for the others
    EXPECT_EQ(lines(f), 4u);
    r.add(refusal("10.0.0.1:2000"), "10.0.0.1", "key not known", 62000);  // a new interval
    r.add(refusal("10.0.0.1:2001"), "10.0.0.1", "key not known", 62001);
    EXPECT_EQ(lines(f), 5u);
  }  // its end writes the open count
  EXPECT_EQ(lines(f), 6u);
  std::ifstream in(f);
  std::vector<nlohmann::json> got;
  for (std::string l; std::getline(in, l);) got.push_back(nlohmann::json::parse(l));
  EXPECT_EQ(got[0]["address"], "10.0.0.1:1000");
  EXPECT_FALSE(got[0].contains("repeated"));
  EXPECT_EQ(got[3]["address"], "10.0.0.1:1000");
  EXPECT_EQ(got[3]["repeated"], 99);
  EXPECT_EQ(got[3]["since"], got[0]["time"]);
  EXPECT_EQ(got[5]["repeated"], 1);
}

TEST(Audit, OversizedFieldsAreCutWithTheirLength) {
  TempDir d;
  std::string f = d.path + "/audit.log";
  Audit a(f, 1 << 20);
  std::string err;
  ASSERT_TRUE(a.open(err)) << err;
  ASSERT_TRUE(a.record({{"what", "adhoc"},
                        {"job", std::string(900 << 10, 'x')},
                        {"argv", {"/bin/echo", std::string(1000, 'y')}},
                        {"verdict", "refused"}},
                       false));
  std::ifstream in(f);
  std::string l;
  std::getline(in, l);
  EXPECT_LT(l.size(), 1024u);
  auto j = nlohmann::json::parse(l);
  EXPECT_EQ(j["job"], std::string(Audit::kMaxField, 'x') + "... (921600 bytes)");
  EXPECT_EQ(j["argv"][0], "/bin/echo");
  EXPECT_EQ(j["argv"][1], std::string(Audit::kMaxField, 'y') + "... (1000 bytes)");
}

// Refusals have their own file: however many, they never rotate a
// decision about a peer out of audit.log (one impostor did, in 15 s).
TEST(Audit, ARefusalFloodLeavesTheDecisionsAlone) {
  TempDir d;
  Audit decisions(d.path + "/audit.log", 4096), refused(d.path + "/audit-refused.log", 4096);
  std::string err;
  ASSERT_TRUE(decisions.open(err) && refused.open(err)) << err;
  ASSERT_TRUE(decisions.record({{"what", "job"}, {"peer", "alpha"}, {"id", "j1"}, {"verdict", "allowed"}}));
  AuditRefusals r(refused, 60000);
  for (int i = 0; i < 20000; ++i) {
    std::string host = "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".1";
    r.add({{"what", "link"}, {"address", host + ":4455"}, {"verdict", "refused"}, {"reason", "key not known"}}, host,
          "key not known", uint64_t(i));
  }
  EXPECT_TRUE(std::filesystem::exists(d.path + "/audit-refused.log.1"));
  EXPECT_EQ(lines(d.path + "/audit.log"), 1u);
  EXPECT_FALSE(std::filesystem::exists(d.path + "/audit.log.1"));
}
