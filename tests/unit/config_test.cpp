#include "config.h"

#include <gtest/gtest.h>

#include <fstream>

using namespace jsd;
using nlohmann::json;

namespace {
bool parse(const char* text, Config& c, std::vector<std::string>& errors) {
  c = default_config();
  return parse_config(json::parse(text), c, errors);
}
bool has(const std::vector<std::string>& v, const std::string& needle) {
  for (auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST(Config, EmptyObjectGivesDefaults) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse("{}", c, e));
  EXPECT_EQ(c.listen.port, 4455);
  EXPECT_EQ(c.port_min, 50000);
  EXPECT_EQ(c.port_max, 59999);
  EXPECT_FALSE(c.node.empty());
  EXPECT_EQ(c.heartbeat_ms, 1000);
}

TEST(Config, FullExampleParses) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse(R"({"node":"alpha","listen":"127.0.0.2:4455","port_range":[50000,50009],
    "state_dir":"/tmp/jsd/alpha","key_file":"/tmp/jsd/k","peers":{"beta":"127.0.0.3:4455"},
    "connect_at_startup":["beta"],"jobs":{"hello":{"command":["/bin/echo","hello"],"timeout_s":60,"max_parallel":4}}})",
                    c, e))
      << (e.empty() ? "" : e[0]);
  EXPECT_EQ(c.node, "alpha");
  EXPECT_EQ(c.listen.host, "127.0.0.2");
  EXPECT_EQ(c.peers.at("beta").str(), "127.0.0.3:4455");
  EXPECT_EQ(c.port_max, 50009);
  EXPECT_EQ(c.jobs.at("hello").command.size(), 2u);
  EXPECT_EQ(c.control_socket(), "/tmp/jsd/alpha/control.sock");
}

TEST(Config, OneLinePerMistake) {
  Config c;
  std::vector<std::string> e;
  EXPECT_FALSE(parse(R"({"nod":"x","listen":"nowhere","port_range":[9,1],"peers":{"beta":"1.2.3.4"},
                         "heartbeat_ms":"1","connect_at_startup":["gamma"]})",
                     c, e));
  EXPECT_TRUE(has(e, "unknown key 'nod'"));
  EXPECT_TRUE(has(e, "listen:"));
  EXPECT_TRUE(has(e, "port_range"));
  EXPECT_TRUE(has(e, "peers.beta"));
  EXPECT_TRUE(has(e, "heartbeat_ms: must be an integer"));
  EXPECT_TRUE(has(e, "connect_at_startup: 'gamma' is not in peers"));
  EXPECT_GE(e.size(), 6u);
}

TEST(Config, StateDirDefaultFollowsNodeName) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse(R"({"node":"gamma"})", c, e));
  EXPECT_EQ(c.state_dir.substr(c.state_dir.size() - 6), "/gamma");
}

TEST(Config, JobMistakes) {
  Config c;
  std::vector<std::string> e;
  EXPECT_FALSE(parse(R"({"jobs":{"a":{"command":"echo hi"},"b":{},"c":{"command":["x"],"max_parallel":0}}})", c, e));
  EXPECT_TRUE(has(e, "jobs.a.command"));
  EXPECT_TRUE(has(e, "jobs.b.command: missing"));
  EXPECT_TRUE(has(e, "jobs.c.max_parallel"));
}

TEST(Config, Endpoints) {
  Endpoint ep;
  std::string err;
  EXPECT_TRUE(parse_endpoint("127.0.0.3:4455", ep, err));
  EXPECT_EQ(ep.port, 4455);
  EXPECT_TRUE(parse_endpoint("[::1]:80", ep, err));
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.str(), "[::1]:80");
  EXPECT_FALSE(parse_endpoint("host.example:80", ep, err));
  EXPECT_FALSE(parse_endpoint("127.0.0.1:0", ep, err));
  EXPECT_FALSE(parse_endpoint("127.0.0.1:65536", ep, err));
  EXPECT_FALSE(parse_endpoint("127.0.0.1", ep, err));
}

TEST(Config, ResolveTarget) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse(R"({"node":"alpha","listen":"127.0.0.2:4455","peers":{"beta":"127.0.0.3:4455"}})", c, e));
  Target t;
  std::string err;
  ASSERT_TRUE(resolve_target(c, "beta", t, err));
  EXPECT_EQ(t.name, "beta");
  ASSERT_TRUE(resolve_target(c, "127.0.0.3:4455", t, err));
  EXPECT_EQ(t.name, "beta");  // an address of a known peer is that peer
  ASSERT_TRUE(resolve_target(c, "127.0.0.9:4455", t, err));
  EXPECT_EQ(t.name, "");
  EXPECT_EQ(t.key(), "127.0.0.9:4455");
  ASSERT_TRUE(resolve_target(c, "alpha", t, err));
  EXPECT_FALSE(resolve_target(c, "gamma", t, err));
  EXPECT_NE(err.find("unknown node 'gamma'"), std::string::npos);
}

TEST(Config, LoadReportsBadJsonAndMissingFile) {
  Config c;
  std::vector<std::string> e;
  EXPECT_FALSE(load_config("/nonexistent/jsd.conf", c, e));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("cannot open"), std::string::npos);
  std::string path = testing::TempDir() + "/bad.conf";
  std::ofstream(path) << "{\"node\": ";
  e.clear();
  EXPECT_FALSE(load_config(path, c, e));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("not valid JSON"), std::string::npos);
}
