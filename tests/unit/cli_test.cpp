#include "cli.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace jsd;

namespace {
// The option set the tools use: a repeatable option and positional words.
cxxopts::Options tool_options() {
  cxxopts::Options opts("jsd-test", "");
  cli_common_options(opts);
  opts.add_options()("p,param", "K=V", cxxopts::value<std::vector<std::string>>(), "K=V")(
      "args", "NODE JOB", cxxopts::value<std::vector<std::string>>());
  opts.parse_positional({"args"});
  return opts;
}

bool parse(std::vector<std::string> words, cxxopts::ParseResult& r) {
  words.insert(words.begin(), "jsd-test");
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  auto opts = tool_options();
  int code = -1;
  return cli_parse(opts, int(argv.size()), argv.data(), r, 255, code);
}
}  // namespace

// jsd-submit(1): a parameter value is any string without NUL. cxxopts splits
// list values at ',' unless told otherwise (issue 7, item 1).
TEST(Cli, ListValuesKeepTheirCommas) {
  cxxopts::ParseResult r;
  ASSERT_TRUE(parse({"-p", "LIST=a,b,c", "-p", "X=1,Y=2", "--param=Z=,", "-p", "E=", "beta,gamma", "job"}, r));
  EXPECT_EQ(r["param"].as<std::vector<std::string>>(),
            (std::vector<std::string>{"LIST=a,b,c", "X=1,Y=2", "Z=,", "E="}));
  EXPECT_EQ(r["args"].as<std::vector<std::string>>(), (std::vector<std::string>{"beta,gamma", "job"}));
}

TEST(Cli, OnlyACommaIsOneValue) {
  cxxopts::ParseResult r;
  ASSERT_TRUE(parse({"-p", ",", ",,"}, r));
  EXPECT_EQ(r["param"].as<std::vector<std::string>>(), (std::vector<std::string>{","}));
  EXPECT_EQ(r["args"].as<std::vector<std::string>>(), (std::vector<std::string>{",,"}));
}
