// jsd-submit's command line (lib/tools/submit_args.h), rule by rule: what
// each mistake says, and what a whole command line runs.
#include "submit_args.h"

#include <gtest/gtest.h>

#include "jsd_version.h"

using namespace jsd;

namespace {

SubmitCommand read(std::vector<std::string> words) {
  words.insert(words.begin(), "jsd-submit");
  return read_submit_command(words);
}

// The one line a refused command line prints, and its status.
std::string refused(std::vector<std::string> words) {
  SubmitCommand c = read(std::move(words));
  EXPECT_FALSE(c.run);
  EXPECT_EQ(c.exit_code, 255);
  EXPECT_TRUE(c.out.empty());
  EXPECT_EQ(c.error.find('\n'), std::string::npos) << c.error;
  return c.error;
}

std::string usage(const std::string& why) { return "jsd-submit: error: " + why + " (see --help)"; }

}  // namespace

TEST(SubmitArgs, NodeAndJob) {
  SubmitCommand c = read({"beta", "backup"});
  ASSERT_TRUE(c.run) << c.error;
  EXPECT_EQ(c.options.mode, SubmitOptions::Mode::submit);
  EXPECT_EQ(c.options.node, "beta");
  EXPECT_EQ(c.options.job, "backup");
  EXPECT_TRUE(c.options.argv.empty());
  EXPECT_TRUE(c.config_path.empty());
  // The defaults jsd-submit(1) names.
  EXPECT_EQ(c.options.fanout, 64u);
  EXPECT_EQ(c.options.batch, 0u);
  EXPECT_EQ(c.options.max_failures, 0u);
  EXPECT_EQ(c.options.timeout_s, 0);
  EXPECT_FALSE(c.options.no_wait || c.options.json || c.options.quiet || c.options.detach_on_interrupt ||
               c.options.gather);
}

TEST(SubmitArgs, EveryOptionLandsInItsField) {
  SubmitCommand c = read({"-f", "/etc/x.conf", "--id", "run-1", "--timeout", "2.5", "--no-wait", "--json", "-q",
                          "--detach-on-interrupt", "--fanout", "8", "--batch", "2", "--max-failures", "3", "--gather",
                          "beta,@web", "backup"});
  ASSERT_TRUE(c.run) << c.error;
  EXPECT_EQ(c.config_path, "/etc/x.conf");
  EXPECT_EQ(c.options.id, "run-1");
  EXPECT_EQ(c.options.timeout_s, 2.5);
  EXPECT_TRUE(c.options.no_wait && c.options.json && c.options.quiet && c.options.detach_on_interrupt &&
              c.options.gather);
  EXPECT_EQ(c.options.fanout, 8u);
  EXPECT_EQ(c.options.batch, 2u);
  EXPECT_EQ(c.options.max_failures, 3u);
  EXPECT_EQ(c.options.node, "beta,@web");  // a target set is one word, commas and all
}

TEST(SubmitArgs, ParamsKeepCommasAndEmptyValues) {
  SubmitCommand c = read({"-p", "LIST=a,b", "--param=E=", "-p", "X=1=2", "beta", "job"});
  ASSERT_TRUE(c.run) << c.error;
  EXPECT_EQ(c.options.params, (std::map<std::string, std::string>{{"LIST", "a,b"}, {"E", ""}, {"X", "1=2"}}));
}

TEST(SubmitArgs, ParamWithoutKeyOrEquals) {
  EXPECT_EQ(refused({"-p", "K", "beta", "job"}), usage("--param wants K=V, got 'K'"));
  EXPECT_EQ(refused({"-p", "=V", "beta", "job"}), usage("--param wants K=V, got '=V'"));
}

TEST(SubmitArgs, AdhocCommandAfterDashDashIsNeverOptions) {
  SubmitCommand c = read({"-q", "beta", "--", "ls", "-l", "--json", "--"});
  ASSERT_TRUE(c.run) << c.error;
  EXPECT_EQ(c.options.argv, (std::vector<std::string>{"ls", "-l", "--json", "--"}));
  EXPECT_TRUE(c.options.job.empty());
  EXPECT_FALSE(c.options.json);
  EXPECT_TRUE(c.options.quiet);
}

TEST(SubmitArgs, AdhocNeedsOneNodeAndACommand) {
  EXPECT_EQ(refused({"beta", "--"}), usage("expected NODE -- CMD [ARG]..."));
  EXPECT_EQ(refused({"--", "ls"}), usage("expected NODE -- CMD [ARG]..."));
  EXPECT_EQ(refused({"beta", "job", "--", "ls"}), usage("expected NODE -- CMD [ARG]..."));
}

TEST(SubmitArgs, PositionalCount) {
  EXPECT_EQ(refused({}), usage("expected NODE JOB"));
  EXPECT_EQ(refused({"beta"}), usage("expected NODE JOB"));
  EXPECT_EQ(refused({"beta", "job", "extra"}), usage("expected NODE JOB"));
}

TEST(SubmitArgs, Queries) {
  SubmitCommand s = read({"--status", "abc", "beta"});
  ASSERT_TRUE(s.run) << s.error;
  EXPECT_EQ(s.options.mode, SubmitOptions::Mode::status);
  EXPECT_EQ(s.options.id, "abc");
  EXPECT_EQ(s.options.node, "beta");
  EXPECT_EQ(read({"--cancel", "abc", "beta"}).options.mode, SubmitOptions::Mode::cancel);
  EXPECT_EQ(read({"--attach", "abc", "beta"}).options.mode, SubmitOptions::Mode::attach);
  SubmitCommand h = read({"--history", "beta"});
  ASSERT_TRUE(h.run) << h.error;
  EXPECT_EQ(h.options.mode, SubmitOptions::Mode::history);
  EXPECT_EQ(h.options.count, 20);
  EXPECT_EQ(read({"--history", "-n", "1000", "beta"}).options.count, 1000);
  EXPECT_EQ(read({"--jobs", "beta"}).options.mode, SubmitOptions::Mode::jobs);
}

TEST(SubmitArgs, QueriesExcludeEachOtherAndSubmissionOptions) {
  const std::string both = usage("--status, --cancel, --attach, --history and --jobs exclude each other");
  EXPECT_EQ(refused({"--status", "a", "--cancel", "a", "beta"}), both);
  EXPECT_EQ(refused({"--history", "--jobs", "beta"}), both);
  const std::string extra =
      usage("--status, --cancel, --attach, --history and --jobs take no --no-wait, --id or --param");
  EXPECT_EQ(refused({"--status", "a", "--no-wait", "beta"}), extra);
  EXPECT_EQ(refused({"--jobs", "--id", "x", "beta"}), extra);
  EXPECT_EQ(refused({"--attach", "a", "-p", "K=V", "beta"}), extra);
}

TEST(SubmitArgs, QueriesTakeOneNode) {
  const std::string id_node = usage("expected --status, --cancel or --attach ID NODE");
  EXPECT_EQ(refused({"--status", "a"}), id_node);
  EXPECT_EQ(refused({"--cancel", "a", "beta", "job"}), id_node);
  EXPECT_EQ(refused({"--attach", "a", "beta", "--", "ls"}), id_node);
  const std::string listing = usage("expected --history NODE [-n N] or --jobs NODE");
  EXPECT_EQ(refused({"--history"}), listing);
  EXPECT_EQ(refused({"--jobs", "beta", "gamma"}), listing);
}

TEST(SubmitArgs, StdinGoesWithAWaitingSubmission) {
  SubmitCommand c = read({"-i", "beta", "job"});
  ASSERT_TRUE(c.run) << c.error;
  EXPECT_TRUE(c.options.input);
  c = read({"--stdin", "beta,gamma", "job"});
  ASSERT_TRUE(c.run) << c.error;
  EXPECT_TRUE(c.options.input);
  c = read({"beta", "job"});
  ASSERT_TRUE(c.run) << c.error;
  EXPECT_FALSE(c.options.input);
  const std::string waits = usage(
      "-i streams input to a job it submits and waits for: not with --no-wait, --status, --cancel, --attach, "
      "--history or --jobs");
  EXPECT_EQ(refused({"-i", "--no-wait", "beta", "job"}), waits);
  EXPECT_EQ(refused({"-i", "--attach", "x", "beta"}), waits);
  EXPECT_EQ(refused({"-i", "--status", "x", "beta"}), waits);
}

TEST(SubmitArgs, HistoryCount) {
  EXPECT_EQ(refused({"-n", "5", "beta", "job"}), usage("-n goes with --history"));
  EXPECT_EQ(refused({"--history", "-n", "0", "beta"}), usage("-n wants a number from 1 to 1000"));
  EXPECT_EQ(refused({"--history", "-n", "1001", "beta"}), usage("-n wants a number from 1 to 1000"));
}

TEST(SubmitArgs, NumbersOutOfRange) {
  EXPECT_EQ(refused({"--timeout", "0", "beta", "job"}),
            usage("--timeout wants a number of seconds > 0 and at most 100000000"));
  EXPECT_EQ(refused({"--timeout", "-1", "beta", "job"}),
            usage("--timeout wants a number of seconds > 0 and at most 100000000"));
  EXPECT_EQ(refused({"--timeout", "1e20", "beta", "job"}),
            usage("--timeout wants a number of seconds > 0 and at most 100000000"));
  const std::string width = usage("--fanout, --batch and --max-failures want a number >= 1");
  EXPECT_EQ(refused({"--fanout", "0", "a,b", "job"}), width);
  EXPECT_EQ(refused({"--batch", "0", "a,b", "job"}), width);
  EXPECT_EQ(refused({"--max-failures", "0", "a,b", "job"}), width);
}

// What cxxopts refuses is one line too, with the same prefix and status.
TEST(SubmitArgs, MalformedOptions) {
  std::string e = refused({"--frob", "beta", "job"});
  EXPECT_EQ(e.rfind("jsd-submit: error: ", 0), 0u) << e;
  EXPECT_NE(e.find("frob"), std::string::npos) << e;
  e = refused({"--timeout", "soon", "beta", "job"});
  EXPECT_EQ(e.rfind("jsd-submit: error: ", 0), 0u) << e;
  EXPECT_NE(e.find("(see --help)"), std::string::npos) << e;
  e = refused({"beta", "job", "--id"});
  EXPECT_EQ(e.rfind("jsd-submit: error: ", 0), 0u) << e;
}

TEST(SubmitArgs, HelpAndVersionPrintAndSucceed) {
  SubmitCommand h = read({"--help"});
  EXPECT_FALSE(h.run);
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_TRUE(h.error.empty());
  EXPECT_NE(h.out.find("--max-failures"), std::string::npos);
  SubmitCommand v = read({"-V", "beta"});
  EXPECT_FALSE(v.run);
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out, std::string("jsd-submit ") + JSD_VERSION + "\n");
}
