#include "config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <limits>

#include "check_config.h"
#include "temp_dir.h"

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

// issue 7: the job would get jsd's value, not the config's (job_run.cpp).
TEST(Config, JobEnvMustNotUseJsdNames) {
  Config c;
  std::vector<std::string> e;
  EXPECT_FALSE(parse(R"({"jobs":{"a":{"command":["x"],"env":{"JSD_NODE":"fake","JSD_PARAM_X":"1","OK":"1"}}}})", c, e));
  EXPECT_EQ(e.size(), 2u);
  EXPECT_TRUE(has(e, "jobs.a.env: 'JSD_NODE' is reserved: jsd sets the JSD_* variables itself"));
  EXPECT_TRUE(has(e, "jobs.a.env: 'JSD_PARAM_X' is reserved"));
  e.clear();
  EXPECT_TRUE(parse(R"({"jobs":{"a":{"command":["x"],"env":{"XJSD_NODE":"1","jsd_x":"2"}}}})", c, e));
}

// "stdin": a job takes standard input only when its definition says so.
TEST(Config, JobStdinIsABooleanAndDefaultsToFalse) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse(R"({"jobs":{"a":{"command":["x"],"stdin":true},"b":{"command":["x"]}}})", c, e));
  EXPECT_TRUE(c.jobs.at("a").reads_stdin);
  EXPECT_FALSE(c.jobs.at("b").reads_stdin);
  EXPECT_FALSE(parse(R"({"jobs":{"a":{"command":["x"],"stdin":"yes"}}})", c, e));
  EXPECT_TRUE(has(e, "jobs.a.stdin"));
}

// issue 7: -t names every mistake in one pass: the file's keys, the key
// file, and each job's cwd (missing, or not a directory).
TEST(CheckConfig, EveryMistakeInOnePass) {
  jsd_test::TempDir dir("config");
  std::ofstream(dir.file("afile")) << "x";
  std::string conf = dir.file("jsd.conf");
  std::ofstream(conf) << R"({"node": "alpha", "heartbeat_ms": "fast", "key_file": ")" << dir.file("missing.key")
                      << R"(", "state_dir": ")" << dir.path << R"(/state", "jobs": {
      "gone": {"command": ["/bin/true"], "cwd": ")"
                      << dir.file("nowhere") << R"("},
      "file": {"command": ["/bin/true"], "cwd": ")"
                      << dir.file("afile") << R"("},
      "fine": {"command": ["/bin/true"], "cwd": ")"
                      << dir.path << R"("},
      "env":  {"command": ["/bin/true"], "env": {"JSD_JOB_ID": "x"}}}})";
  Config c;
  std::vector<std::string> e;
  bool json_read = false;
  EXPECT_FALSE(load_config(conf, c, e, &json_read));
  EXPECT_TRUE(json_read);
  check_config_extra(c, "", true, e);
  EXPECT_TRUE(has(e, "heartbeat_ms: must be an integer")) << testing::PrintToString(e);
  EXPECT_TRUE(has(e, "jobs.env.env: 'JSD_JOB_ID' is reserved"));
  EXPECT_TRUE(has(e, "missing.key")) << testing::PrintToString(e);
  EXPECT_TRUE(has(e, "jobs.gone.cwd: '" + dir.file("nowhere") + "' does not exist"));
  EXPECT_TRUE(has(e, "jobs.file.cwd: '" + dir.file("afile") + "' is not a directory"));
  EXPECT_FALSE(has(e, "jobs.fine"));
  EXPECT_EQ(e.size(), 5u) << testing::PrintToString(e);
}

TEST(CheckConfig, NotJsonStopsAtTheFile) {
  jsd_test::TempDir dir("config");
  std::string conf = dir.file("jsd.conf");
  std::ofstream(conf) << "{\"node\": ";
  Config c;
  std::vector<std::string> e;
  bool json_read = true;
  EXPECT_FALSE(load_config(conf, c, e, &json_read));
  EXPECT_FALSE(json_read);
  EXPECT_FALSE(load_config(dir.file("none.conf"), c, e, &json_read));
  EXPECT_FALSE(json_read);
}

TEST(Config, JobMistakes) {
  Config c;
  std::vector<std::string> e;
  EXPECT_FALSE(parse(R"({"jobs":{"a":{"command":"echo hi"},"b":{},"c":{"command":["x"],"max_parallel":0}}})", c, e));
  EXPECT_TRUE(has(e, "jobs.a.command"));
  EXPECT_TRUE(has(e, "jobs.b.command: missing"));
  EXPECT_TRUE(has(e, "jobs.c.max_parallel"));
}

TEST(Config, JobDescription) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse(R"({"jobs":{"a":{"command":["x"],"description":"backs up /srv"}}})", c, e));
  EXPECT_EQ(c.jobs["a"].description, "backs up /srv");
  EXPECT_EQ(config_to_json(c)["jobs"]["a"]["description"], "backs up /srv");
  EXPECT_FALSE(parse(
      R"({"jobs":{"a":{"command":["x"],"description":"two\nlines"},"b":{"command":["x"],"description":7}}})", c, e));
  EXPECT_TRUE(has(e, "jobs.a.description: must be one line"));
  EXPECT_TRUE(has(e, "jobs.b.description"));
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
  jsd_test::TempDir dir("config");
  std::string path = dir.file("bad.conf");
  std::ofstream(path) << "{\"node\": ";
  e.clear();
  EXPECT_FALSE(load_config(path, c, e));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("not valid JSON"), std::string::npos);
}

namespace {
// parse_config_text with one key: the errors it gives.
std::vector<std::string> mistakes(const std::string& text) {
  Config c = default_config();
  std::vector<std::string> e;
  bool ok = parse_config_text(text, c, e);
  EXPECT_EQ(ok, e.empty()) << text;
  return e;
}
std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += x + "\n";
  return s;
}
}  // namespace

// issue 13: 1e1100 aborted jsd-listener -t (nlohmann's out_of_range escaped).
TEST(ConfigHostile, NumberBeyondDoubleIsOneLineNamingItsKey) {
  auto e = mistakes(R"({"heartbeat_ms": 1e1100})");
  ASSERT_EQ(e.size(), 1u) << join(e);
  EXPECT_EQ(e[0], "heartbeat_ms: the number 1e1100 is out of range");
  e = mistakes(R"({"jobs": {"a": {"command": ["x"]}, "b": {"command": ["y"], "timeout_s": -1e999}}})");
  ASSERT_EQ(e.size(), 1u) << join(e);
  EXPECT_EQ(e[0], "jobs.b.timeout_s: the number -1e999 is out of range");
  e = mistakes(R"({"node": "a", "port_range": [1, 1e1100]})");
  ASSERT_EQ(e.size(), 1u) << join(e);
  EXPECT_EQ(e[0], "port_range: the number 1e1100 is out of range");
}

TEST(ConfigHostile, LoadConfigReportsOverflowWithThePath) {
  jsd_test::TempDir dir("config");
  std::string path = dir.file("overflow.conf");
  std::ofstream(path) << R"({"node": "alpha", "job_kill_grace_s": 1e1100})";
  Config c;
  std::vector<std::string> e;
  EXPECT_FALSE(load_config(path, c, e));
  ASSERT_EQ(e.size(), 1u) << join(e);
  EXPECT_EQ(e[0], path + ": job_kill_grace_s: the number 1e1100 is out of range");
}

TEST(ConfigHostile, IntegersRefuseNegativesFractionsStringsAndOverflow) {
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": -1})")), "heartbeat_ms: must be an integer in 50-600000, not -1\n");
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": 1.5})")), "heartbeat_ms: must be an integer in 50-600000, not 1.5\n");
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": "x"})")), "heartbeat_ms: must be an integer in 50-600000, not \"x\"\n");
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": true})")), "heartbeat_ms: must be an integer in 50-600000, not true\n");
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": [1]})")),
            "heartbeat_ms: must be an integer in 50-600000, not an array\n");
  // Beyond int (2^31) and beyond int64 (held as unsigned), and beyond uint64
  // (the parser makes it a float): never wrapped into range.
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": 4294968296})")),
            "heartbeat_ms: must be an integer in 50-600000, not 4294968296\n");
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": 18446744073709551615})")),
            "heartbeat_ms: must be an integer in 50-600000, not 18446744073709551615\n");
  EXPECT_EQ(join(mistakes(R"({"heartbeat_ms": 100000000000000000000})")),
            "heartbeat_ms: must be an integer in 50-600000, not 1e+20\n");
  // size_t and long keys: negative counts.
  EXPECT_EQ(join(mistakes(R"({"job_records_keep": -1})")),
            "job_records_keep: must be an integer in 1-10000000, not -1\n");
  EXPECT_EQ(join(mistakes(R"({"max_frame": -9223372036854775808})")),
            "max_frame: must be an integer in 1024-67108864, not -9223372036854775808\n");
  EXPECT_EQ(join(mistakes(R"({"job_records_max_age_s": 1e3})")),
            "job_records_max_age_s: must be an integer in 60-3153600000, not 1000.0\n");
  EXPECT_EQ(join(mistakes(R"({"jobs": {"a": {"command": ["x"], "max_parallel": -1}}})")),
            "jobs.a.max_parallel: must be an integer in 1-10000, not -1\n");
  EXPECT_EQ(join(mistakes(R"({"jobs": {"a": {"command": ["x"], "max_parallel": 2.5}}})")),
            "jobs.a.max_parallel: must be an integer in 1-10000, not 2.5\n");
}

TEST(ConfigHostile, JobOutputKeepIsBytesInRange) {
  EXPECT_EQ(default_config().job_output_keep, 1u << 20);
  EXPECT_EQ(join(mistakes(R"({"job_output_keep": 100})")),
            "job_output_keep: must be an integer in 4096-17179869184, not 100\n");
  EXPECT_EQ(join(mistakes(R"({"job_output_keep": 1e20})")),
            "job_output_keep: must be an integer in 4096-17179869184, not 1e+20\n");
  EXPECT_EQ(join(mistakes(R"({"job_output_keep": 65536})")), "");
}

TEST(ConfigHostile, NumbersAreFiniteAndInRange) {
  EXPECT_EQ(join(mistakes(R"({"idle_client_s": 0})")), "idle_client_s: must be an integer in 1-604800, not 0\n");
  EXPECT_EQ(join(mistakes(R"({"idle_client_s": 1.5})")), "idle_client_s: must be an integer in 1-604800, not 1.5\n");
  EXPECT_TRUE(mistakes(R"({"idle_client_s": 1})").empty());
  EXPECT_EQ(join(mistakes(R"({"job_kill_grace_s": -1})")),
            "job_kill_grace_s: must be a number of seconds in 0-3600, not -1\n");
  EXPECT_EQ(join(mistakes(R"({"job_kill_grace_s": "x"})")),
            "job_kill_grace_s: must be a number of seconds in 0-3600, not \"x\"\n");
  // A timeout far beyond what the millisecond timer holds (UB when converted).
  EXPECT_EQ(join(mistakes(R"({"jobs": {"a": {"command": ["x"], "timeout_s": 1e300}}})")),
            "jobs.a.timeout_s: must be a number of seconds in 0-315360000, not 1e+300\n");
  EXPECT_TRUE(mistakes(R"({"jobs": {"a": {"command": ["x"], "timeout_s": 0.25}}, "job_kill_grace_s": 1.5})").empty());
  // Built in memory, a JSON value can hold what no text can: still refused.
  Config c = default_config();
  std::vector<std::string> e;
  nlohmann::json j = {{"job_kill_grace_s", std::numeric_limits<double>::quiet_NaN()}};
  EXPECT_FALSE(parse_config(j, c, e));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("job_kill_grace_s: must be a number of seconds in 0-3600, not ", 0), 0u) << e[0];
  e.clear();
  j = {{"job_kill_grace_s", std::numeric_limits<double>::infinity()}};
  EXPECT_FALSE(parse_config(j, c, e));
  EXPECT_EQ(e.size(), 1u);
}

TEST(ConfigHostile, Ports) {
  EXPECT_EQ(join(mistakes(R"({"port_range": [0, 10]})")), "port_range: first: must be an integer in 1-65535, not 0\n");
  EXPECT_EQ(join(mistakes(R"({"port_range": [1, 65536]})")),
            "port_range: last: must be an integer in 1-65535, not 65536\n");
  EXPECT_EQ(join(mistakes(R"({"port_range": [-1, 18446744073709551615]})")),
            "port_range: first: must be an integer in 1-65535, not -1\n"
            "port_range: last: must be an integer in 1-65535, not 18446744073709551615\n");
  EXPECT_EQ(join(mistakes(R"({"port_range": [50000.5, 50001]})")),
            "port_range: first: must be an integer in 1-65535, not 50000.5\n");
  EXPECT_EQ(join(mistakes(R"({"port_range": [60000, 50000]})")),
            "port_range: [60000, 50000] is not a range (first must not exceed last)\n");
  EXPECT_EQ(join(mistakes(R"({"port_range": [1, 2, 3]})")), "port_range: must be [first, last], two port numbers\n");
  EXPECT_TRUE(mistakes(R"({"port_range": [4000, 4000]})").empty());
  EXPECT_EQ(join(mistakes(R"({"listen": "127.0.0.1:65536"})")), "listen: '65536' is not a port number (1-65535)\n");
  EXPECT_EQ(join(mistakes(R"({"listen": "127.0.0.1:0"})")), "listen: '0' is not a port number (1-65535)\n");
  EXPECT_EQ(join(mistakes(R"({"listen": "127.0.0.1:-1"})")), "listen: '-1' is not a port number (1-65535)\n");
  EXPECT_EQ(join(mistakes(R"({"listen": "127.0.0.1:99999999999999999999"})")),
            "listen: '99999999999999999999' is not a port number (1-65535)\n");
  EXPECT_EQ(join(mistakes(R"({"listen": 4455})")), "listen: must be a string, not 4455\n");
}

TEST(ConfigHostile, StringsAndTypes) {
  // A NUL would cut a path or an argument short where it is used.
  EXPECT_EQ(join(mistakes(R"({"state_dir": "/tmp/a\u0000b"})")), "state_dir: must not contain a NUL character\n");
  EXPECT_EQ(join(mistakes(R"({"jobs": {"a": {"command": ["x\u0000y"]}}})")),
            "jobs.a.command: must be an array of strings (argv)\n");
  EXPECT_EQ(join(mistakes(R"({"listen": "127.0.0.1\u0000junk:80"})")), "listen: must not contain a NUL character\n");
  // And parse_endpoint on its own (a hello's address, an argument).
  Endpoint ep;
  std::string err;
  EXPECT_FALSE(parse_endpoint(std::string("127.0.0.1\0junk:80", 18), ep, err));
  EXPECT_EQ(err, "'127.0.0.1\\x00junk' is not a numeric IPv4 or IPv6 address");
  EXPECT_EQ(join(mistakes(R"({"syslog": 1})")), "syslog: must be true or false, not 1\n");
  EXPECT_EQ(join(mistakes(R"({"jobs": {"a": {"command": ["x"], "env": {"A=B": "1", "C": 2}}}})")),
            "jobs.a.env: 'A=B' is not a variable name\njobs.a.env.C: must be a string, not 2\n");
  // A key with a newline stays on its line.
  EXPECT_EQ(join(mistakes("{\"bad\\nkey\": 1}")), "unknown key 'bad\\x0akey'\n");
  EXPECT_EQ(join(mistakes(R"([1, 2])")), "the configuration must be a JSON object\n");
  auto e = mistakes(R"({"node": )");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("not valid JSON: parse error", 0), 0u) << e[0];
}

// Every typed value of a well-formed file with each wrong JSON type: one line
// each, never an exception.
TEST(ConfigHostile, EveryKeyWithEveryWrongType) {
  const char* keys[] = {"node",
                        "listen",
                        "port_range",
                        "state_dir",
                        "user",
                        "key_file",
                        "peers",
                        "connect_at_startup",
                        "max_frame",
                        "handshake_timeout_ms",
                        "heartbeat_ms",
                        "dead_after_ms",
                        "rekey_after_s",
                        "rekey_after_frames",
                        "handshakes_per_address",
                        "handshake_rate_per_address",
                        "reconnect_min_ms",
                        "reconnect_max_ms",
                        "log_level",
                        "syslog",
                        "jobs",
                        "allow_adhoc",
                        "job_records_keep",
                        "job_records_max_age_s",
                        "job_kill_grace_s",
                        "psk_file",
                        "cert_file",
                        "trusted_cas",
                        "revoked",
                        "groups",
                        "audit_max_bytes",
                        "metrics_file",
                        "metrics_interval_s"};
  const char* values[] = {"null",
                          "true",
                          "-1",
                          "1.5",
                          "1e300",
                          "18446744073709551615",
                          "\"x\"",
                          "[\"x\"]",
                          "{\"x\": 1}",
                          "[[]]",
                          "{\"x\": {\"y\": [1e300]}}"};
  for (auto* k : keys)
    for (auto* v : values) {
      std::string text = std::string("{\"") + k + "\": " + v + "}";
      Config c = default_config();
      std::vector<std::string> e;
      EXPECT_NO_THROW(parse_config_text(text, c, e)) << text;
      for (auto& line : e) EXPECT_EQ(line.find('\n'), std::string::npos) << text;
    }
}

// issue 21: metrics_file is an absolute path, metrics_interval_s 1 to 3600.
TEST(ConfigGuard, MetricsFileAndInterval) {
  EXPECT_EQ(join(mistakes(R"({"metrics_file": "jsd.prom"})")), "metrics_file: must be an absolute path\n");
  EXPECT_EQ(join(mistakes(R"({"metrics_file": ""})")), "metrics_file: must be an absolute path\n");
  EXPECT_NE(join(mistakes(R"({"metrics_interval_s": 0})")), "");
  EXPECT_EQ(
      join(mistakes(R"({"metrics_file": "/var/lib/prometheus/node-exporter/jsd.prom", "metrics_interval_s": 60})")),
      "");
  Config c = default_config();
  std::vector<std::string> e;
  ASSERT_TRUE(parse_config_text(R"({"metrics_file": "/m/jsd.prom", "metrics_interval_s": 5})", c, e));
  EXPECT_EQ(c.metrics_file, "/m/jsd.prom");
  EXPECT_EQ(c.metrics_interval_s, 5);
  EXPECT_EQ(config_to_json(c)["metrics_file"], "/m/jsd.prom");
}

// issue 12: the refusal of the node's own name as a peer is pinned. Without
// it, a node would dial itself and answer itself under a peer's name.
TEST(ConfigGuard, NodesOwnNameIsNotAPeer) {
  auto e = mistakes(R"({"node": "alpha", "peers": {"alpha": "127.0.0.2:4455", "beta": "127.0.0.3:4455"}})");
  ASSERT_EQ(e.size(), 1u) << join(e);
  EXPECT_EQ(e[0], "peers: 'alpha' is this node's own name");
  // Whatever order the keys come in, and with the default node name too.
  e = mistakes(R"({"peers": {"alpha": "127.0.0.2:4455"}, "node": "alpha"})");
  EXPECT_EQ(join(e), "peers: 'alpha' is this node's own name\n");
  Config c = default_config();
  std::vector<std::string> errs;
  nlohmann::json j = {{"peers", {{c.node, "127.0.0.2:4455"}}}};
  EXPECT_FALSE(parse_config(j, c, errs));
  EXPECT_EQ(join(errs), "peers: '" + default_config().node + "' is this node's own name\n");
}

// Issue 24: node names are names, never addresses: one line each.
TEST(Config, NodeNamesLikeAddressesAreRefused) {
  Config c;
  std::vector<std::string> e;
  EXPECT_FALSE(parse(R"({"node": "127.0.6.21:4455",
                         "peers": {"10.0.0.1:4455": "10.0.0.1:4455", "beta": "127.0.0.3:4455"},
                         "groups": {"ops": ["a:b"]}})",
                     c, e));
  const std::string rule = "(1-64 of letters, digits, . _ -; a name, not an address: no ':' or '/')";
  EXPECT_TRUE(has(e, "node: '127.0.6.21:4455' is not a node name " + rule));
  EXPECT_TRUE(has(e, "peers: '10.0.0.1:4455' is not a node name " + rule));
  EXPECT_TRUE(has(e, "groups.ops: 'a:b' is not a node name " + rule));
  e.clear();
  EXPECT_FALSE(parse(R"({"node": "a/b"})", c, e));
  EXPECT_TRUE(has(e, "is not a node name"));
  // Job names may hold ':' as before: they are never addresses.
  e.clear();
  EXPECT_TRUE(parse(R"({"node": "alpha", "jobs": {"db:backup": {"command": ["/bin/true"]}}})", c, e)) << e[0];
}

// issue 23: the service user, and the StrictModes checks of what the node reads.
TEST(Config, UserNamesAnExistingUser) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse(R"({"user": "root"})", c, e)) << join(e);
  EXPECT_EQ(c.user, "root");
  EXPECT_EQ(config_to_json(c)["user"], "root");
  ASSERT_TRUE(parse(R"({"user": "0"})", c, e)) << join(e);
  EXPECT_FALSE(parse(R"({"user": "no-such-user-jsd-test"})", c, e));
  EXPECT_TRUE(has(e, "user: no such user 'no-such-user-jsd-test'")) << join(e);
  Config d = default_config();
  EXPECT_FALSE(config_to_json(d).contains("user"));
}

TEST(CheckConfig, TheListenerRunsAsItsUser) {
  Config c = default_config();
  PathOwners o;
  std::string err;
  c.user = std::to_string(geteuid());
  ASSERT_TRUE(node_file_owners(c, true, o, err)) << err;
  EXPECT_TRUE(o.may_own(geteuid(), true));
  EXPECT_TRUE(o.may_own(0, true));
  c.user = "999999";
  EXPECT_FALSE(node_file_owners(c, true, o, err));
  EXPECT_EQ(err, "user: the listener runs as " + user_name(geteuid()) +
                     ", not 999999 (start it as 999999: User= in its systemd unit, or runuser -u 999999)");
  // -t is not the listener: it checks the files for that user instead.
  ASSERT_TRUE(node_file_owners(c, false, o, err)) << err;
  EXPECT_TRUE(o.may_own(999999u, true));
}

TEST(CheckConfig, FilesOthersCanChangeAreRefusedWithOwnerAndMode) {
  jsd_test::TempDir dir("config");
  std::string real, why;
  ASSERT_TRUE(canonical_path(dir.path, real, why)) << why;
  PathOwners o;
  o.firm = {0, geteuid()};
  if (!check_path(real, PathKind::directory, o, why)) GTEST_SKIP() << "the temporary directory is not safe: " << why;
  ASSERT_EQ(mkdir((real + "/keys").c_str(), 0777), 0);
  ASSERT_EQ(chmod((real + "/keys").c_str(), 0777), 0);
  std::string conf = real + "/jsd.conf", key = real + "/keys/node.key";
  std::ofstream(conf) << "{}";
  std::ofstream(key) << "x";
  ASSERT_EQ(chmod(conf.c_str(), 0664), 0);
  Config c = default_config();
  c.path = conf;
  c.key_file = key;
  c.state_dir = real + "/state/alpha";  // not there yet: its existing part is checked
  std::vector<std::string> e;
  check_node_files(c, o, e);
  std::string me = user_name(geteuid());
  ASSERT_EQ(e.size(), 2u) << join(e);
  EXPECT_EQ(e[0],
            "refusing the configuration file " + conf + ": it is writable by its group (owner " + me + ", mode 0664)");
  EXPECT_EQ(e[1], "refusing key_file " + key + ": its directory " + real +
                      "/keys is writable by its group and others (owner " + me + ", mode 0777)");
  ASSERT_EQ(chmod(conf.c_str(), 0644), 0);
  ASSERT_EQ(chmod((real + "/keys").c_str(), 0700), 0);
  e.clear();
  check_node_files(c, o, e);
  EXPECT_TRUE(e.empty()) << join(e);
  // A state_dir below a directory others can write.
  ASSERT_EQ(mkdir((real + "/shared").c_str(), 0777), 0);
  ASSERT_EQ(chmod((real + "/shared").c_str(), 0777), 0);
  c.state_dir = real + "/shared/jsd/alpha";
  check_node_files(c, o, e);
  ASSERT_EQ(e.size(), 1u) << join(e);
  EXPECT_EQ(e[0], "refusing state_dir " + c.state_dir + ": its directory " + real +
                      "/shared is writable by its group and others (owner " + me + ", mode 0777)");
}

// The attacker-facing limits an operator may set (issue 22): defaults
// unchanged, ranges enforced, and carried into config.running (the link
// processes read the rekey budget there).
TEST(ConfigLimits, NodePortAndRekeyKeys) {
  Config d = default_config();
  EXPECT_EQ(d.rekey_after_frames, uint64_t(1) << 20);
  EXPECT_EQ(d.handshakes_per_address, 32u);
  EXPECT_EQ(d.handshake_rate_per_address, 50);
  Config c = default_config();
  std::vector<std::string> e;
  ASSERT_TRUE(parse_config_text(
      R"({"rekey_after_frames": 16, "handshakes_per_address": 512, "handshake_rate_per_address": 1})", c, e))
      << join(e);
  EXPECT_EQ(c.rekey_after_frames, 16u);
  EXPECT_EQ(c.handshakes_per_address, 512u);
  EXPECT_EQ(c.handshake_rate_per_address, 1);
  auto j = config_to_json(c);
  EXPECT_EQ(j["rekey_after_frames"], 16);
  EXPECT_EQ(j["handshakes_per_address"], 512);
  EXPECT_EQ(j["handshake_rate_per_address"], 1);
  for (const char* bad :
       {R"({"rekey_after_frames": 15})", R"({"rekey_after_frames": 1048577})", R"({"handshakes_per_address": 0})",
        R"({"handshakes_per_address": 513})", R"({"handshake_rate_per_address": 0})"}) {
    Config x = default_config();
    std::vector<std::string> errs;
    EXPECT_FALSE(parse_config_text(bad, x, errs)) << bad;
    EXPECT_EQ(errs.size(), 1u) << bad;
  }
}

// issue 20: idle links are probed every idle_heartbeat_ms; its default
// follows a slower heartbeat_ms instead of making that configuration wrong.
TEST(Config, IdleHeartbeatDefaultsAndLimits) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse("{}", c, e));
  EXPECT_EQ(c.idle_heartbeat_ms, 15000);
  ASSERT_TRUE(parse(R"({"heartbeat_ms": 20000, "dead_after_ms": 60000})", c, e)) << join(e);
  EXPECT_EQ(c.idle_heartbeat_ms, 20000);
  ASSERT_TRUE(parse(R"({"idle_heartbeat_ms": 2000})", c, e)) << join(e);
  EXPECT_EQ(c.idle_heartbeat_ms, 2000);
  EXPECT_EQ(join(mistakes(R"({"idle_heartbeat_ms": 500})")),
            "idle_heartbeat_ms (500) must not be smaller than heartbeat_ms (1000)\n");
  EXPECT_EQ(join(mistakes(R"({"idle_heartbeat_ms": 10})")),
            "idle_heartbeat_ms: must be an integer in 50-3600000, not 10\n");
}

// Gateways: via instead of an address, one clear line per mistake.
TEST(Config, ViaPeersAndTheirMistakes) {
  Config c;
  std::vector<std::string> e;
  ASSERT_TRUE(parse(R"({"node":"alpha","gateway":true,"peers":{"beta":"127.0.0.3:4455",
      "gamma":{"via":"beta","public_key":"onq3L+Uo3oY7RSLSAPCgFIRxbrdbfGof00D9Xcz9ow4="},
      "delta":{"via":"gamma"}}})",
                    c, e))
      << join(e);
  EXPECT_TRUE(c.gateway);
  EXPECT_EQ(c.via.at("gamma"), "beta");
  EXPECT_FALSE(c.peers.count("gamma"));
  Target t;
  std::string err;
  ASSERT_TRUE(resolve_target(c, "delta", t, err)) << err;
  EXPECT_EQ(t.name, "delta");
  EXPECT_EQ(t.via, "beta");
  EXPECT_EQ(t.link(), "beta");
  // The running copy reads back the same.
  Config again = default_config();
  ASSERT_TRUE(parse_config(config_to_json(c), again, e)) << join(e);
  EXPECT_EQ(again.via, c.via);
  EXPECT_TRUE(again.gateway);

  auto one = [](const std::string& text, const std::string& needle) {
    auto got = mistakes(text);
    EXPECT_EQ(got.size(), 1u) << join(got);
    EXPECT_TRUE(has(got, needle)) << join(got);
  };
  one(R"({"peers":{"gamma":{"via":"beta","address":"127.0.0.4:4455"}}})", "\"via\" and \"address\" both given");
  one(R"({"peers":{"gamma":{"via":"nosuch"}}})", "'nosuch' (the gateway to gamma) is not a peer with an address");
  auto loop = mistakes(R"({"peers":{"gamma":{"via":"delta"},"delta":{"via":"gamma"}}})");
  EXPECT_TRUE(has(loop, "peers.gamma.via: 'gamma' is reached through a loop (gamma -> delta -> gamma)")) << join(loop);
  one(R"({"peers":{"gamma":{"via":"a/b"}}})", "peers.gamma.via: 'a/b' is not a node name");
  one(R"({"gateway":"yes"})", "gateway");
  one(R"({"relay_window_s":1})", "relay_window_s");
}
