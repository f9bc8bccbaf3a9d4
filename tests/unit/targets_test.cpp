#include "targets.h"

#include <gtest/gtest.h>

#include "fanout.h"

using namespace jsd;
using nlohmann::json;

namespace {

Config cfg() {
  Config c = default_config();
  std::vector<std::string> e;
  EXPECT_TRUE(parse_config(json::parse(R"({"node": "alpha", "listen": "127.0.0.2:4455",
    "peers": {"beta": "127.0.0.3:4455", "gamma": "127.0.0.4:4455", "delta": "127.0.0.5:4455"},
    "groups": {"web": ["beta", "gamma"], "empty": [], "self": ["self", "beta"]}})"),
                           c, e));
  return c;
}

std::vector<TargetEntry> expand(const std::string& arg, const TargetDirectory& d, std::string& err) {
  std::vector<std::string> items;
  std::vector<TargetEntry> out;
  if (!split_target_set(arg, items, err)) return {{"", "split: " + err}};
  if (!expand_targets(items, d, out, err)) return {{"", "expand: " + err}};
  return out;
}

std::string keys(const std::vector<TargetEntry>& v) {
  std::string s;
  for (auto& t : v) s += (s.empty() ? "" : " ") + (t.error.empty() ? t.key : "!" + t.key);
  return s;
}

}  // namespace

TEST(Targets, WhatIsASet) {
  EXPECT_FALSE(is_target_set("beta"));
  EXPECT_FALSE(is_target_set("127.0.0.3:4455"));
  EXPECT_TRUE(is_target_set("beta,gamma"));
  EXPECT_TRUE(is_target_set("@web"));
  EXPECT_TRUE(is_target_set("beta,"));
}

TEST(Targets, ListGroupAllMixedInOrderEachOnce) {
  Config c = cfg();
  TargetDirectory d{&c, {}, {}};
  std::string err;
  EXPECT_EQ(keys(expand("gamma,beta", d, err)), "gamma beta");
  EXPECT_EQ(keys(expand("@web", d, err)), "beta gamma");
  EXPECT_EQ(keys(expand("@all", d, err)), "beta delta gamma");
  EXPECT_EQ(keys(expand("delta,@web", d, err)), "delta beta gamma");
  // Duplicates run once, however they are named (an address is its peer).
  EXPECT_EQ(keys(expand("beta,beta,@web,127.0.0.3:4455,@all", d, err)), "beta gamma delta");
  // This node itself, and an address that is no peer.
  EXPECT_EQ(keys(expand("alpha,127.0.0.9:4455", d, err)), "alpha 127.0.0.9:4455");
}

TEST(Targets, UnknownNamesAndGroupsAreErrorsForThemAlone) {
  Config c = cfg();
  TargetDirectory d{&c, {}, {}};
  std::string err;
  auto v = expand("beta,nosuch,@nogroup,gamma,nosuch", d, err);
  EXPECT_EQ(keys(v), "beta !nosuch !@nogroup gamma");
  EXPECT_NE(v[1].error.find("unknown node 'nosuch'"), std::string::npos) << v[1].error;
  EXPECT_NE(v[2].error.find("unknown group 'nogroup'"), std::string::npos) << v[2].error;
}

TEST(Targets, EmptyAndSelfNamingGroups) {
  Config c = cfg();
  TargetDirectory d{&c, {}, {}};
  std::string err;
  // A group that names itself: the name is a node that does not exist.
  EXPECT_EQ(keys(expand("@self", d, err)), "!self beta");
  // An empty group adds nothing; alone, it names no node: one line.
  EXPECT_EQ(keys(expand("@empty,beta", d, err)), "beta");
  EXPECT_EQ(keys(expand("@empty", d, err)), "!");  // expand() failed
  EXPECT_NE(err.find("names no node"), std::string::npos) << err;
}

TEST(Targets, EmptyElementsAreOneError) {
  std::vector<std::string> items;
  std::string err;
  EXPECT_FALSE(split_target_set("beta,,gamma", items, err));
  EXPECT_NE(err.find("empty name"), std::string::npos);
  EXPECT_FALSE(split_target_set("beta,", items, err));
  EXPECT_FALSE(split_target_set(",", items, err));
}

TEST(Targets, TenThousandNames) {
  Config c = cfg();
  TargetDirectory d{&c, {}, {}};
  std::string arg, err;
  // The same few names 10,000 times: a sensible reading, each once.
  for (int i = 0; i < 10000; ++i) arg += (i ? "," : "") + std::string(i % 2 ? "beta" : "gamma");
  EXPECT_EQ(keys(expand(arg, d, err)), "gamma beta");
  // 10,000 different names: one clear line, nothing resolved one by one.
  arg.clear();
  for (int i = 0; i < 10000; ++i) arg += (i ? ",n" : "n") + std::to_string(i);
  auto v = expand(arg, d, err);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].error.find("at most 4096"), std::string::npos) << v[0].error;
  // And past four times the bound, before any lookup.
  arg.clear();
  for (int i = 0; i < 20000; ++i) arg += (i ? ",b" : "b");
  v = expand(arg, d, err);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].error.find("split: target set has more than"), std::string::npos) << v[0].error;
}

TEST(Targets, CertifiedPeersAndTheirGroupsFromTheListener) {
  Config c = cfg();
  TargetDirectory d{&c, {}, {}};
  add_listener_peers(d, json::parse(R"({"peers": [
    {"peer": "beta", "groups": ["web"], "cert_groups": []},
    {"peer": "epsilon", "by": "certificate", "cert_groups": ["db", "web"]},
    {"peer": "bad/name", "cert_groups": ["db"]}, {"peer": 7}, "junk"]})"));
  std::string err;
  EXPECT_EQ(keys(expand("@db", d, err)), "epsilon");
  EXPECT_EQ(keys(expand("@web", d, err)), "beta gamma epsilon");
  EXPECT_EQ(keys(expand("epsilon,beta", d, err)), "epsilon beta");
  // @all is the configured peers.
  EXPECT_EQ(keys(expand("@all", d, err)), "beta delta gamma");
  // A malformed status adds nothing and throws nothing.
  TargetDirectory d2{&c, {}, {}};
  add_listener_peers(d2, json::parse(R"({"peers": 5})"));
  add_listener_peers(d2, json());
  EXPECT_TRUE(d2.certified.empty());
}

TEST(Targets, NeedsListenerOnlyForWhatTheConfigDoesNotKnow) {
  Config c = cfg();
  EXPECT_FALSE(needs_listener({"beta", "@web", "@all", "127.0.0.9:1"}, c));
  EXPECT_TRUE(needs_listener({"beta", "@db"}, c));
  EXPECT_TRUE(needs_listener({"epsilon"}, c));
}

TEST(Targets, DerivedIdsAreValidAndStable) {
  EXPECT_EQ(derived_id("nightly-1", "beta"), "nightly-1.beta");
  EXPECT_EQ(derived_id("x", "127.0.0.3:4455"), "x.127.0.0.3:4455");
  std::string long_id(60, 'a');
  std::string d = derived_id(long_id, "beta");
  EXPECT_EQ(d.size(), 60u + 1 + 16);
  EXPECT_EQ(d, derived_id(long_id, "beta"));
  EXPECT_NE(d, derived_id(long_id, "gamma"));
}
