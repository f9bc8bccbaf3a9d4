#include "submit_args.h"

#include <cxxopts.hpp>

#include "cli.h"
#include "exit_codes.h"

namespace jsd {
namespace {

cxxopts::Options submit_options() {
  cxxopts::Options opts("jsd-submit",
                        "Runs JOB (defined in NODE's configuration) on NODE: prints its start, streams its\n"
                        "output, and exits with its exit status (128+N for signal N; 255: jsd failed and the job\n"
                        "did not run; 254: jsd cannot know whether it ran). NODE may be a target set:\n"
                        "NODE,NODE..., @GROUP, @all, mixed; the job then runs on every node at once, each output\n"
                        "line prefixed \"NODE: \"; the exit status is the highest (254 if any node's is unknown).\n");
  opts.custom_help(
      "[-i] [-p K=V]... [--id ID] [--timeout S] [--no-wait] [--json] [-q] [--detach-on-interrupt] [-f FILE]\n"
      "                  [--fanout N] [--batch N] [--max-failures N] [--gather]\n"
      "                  TARGETS JOB | TARGETS -- CMD [ARG]... | --status ID NODE | --cancel ID NODE\n"
      "                  | --attach ID NODE | --history NODE [-n N] | --jobs NODE");
  opts.positional_help("");
  cli_common_options(opts);
  opts.add_options()("p,param", "pass K=V to the job as the environment variable JSD_PARAM_K (repeatable)",
                     cxxopts::value<std::vector<std::string>>(), "K=V")(
      "id", "submission id (default: random); a node runs an id at most once", cxxopts::value<std::string>(), "ID")(
      "timeout", "give up after S seconds: cancel the job and exit 255", cxxopts::value<double>(), "S")(
      "no-wait", "return once the submission is safely queued on this node; print its id")(
      "i,stdin", "stream standard input to the job's (to every node of a target set; default: /dev/null)")(
      "json", "print one JSON object at the end (id, node, job, state, exit status and exit_from, times)")(
      "q,quiet", "do not print the start confirmation and notes")(
      "detach-on-interrupt", "on SIGINT/SIGTERM leave the job running instead of cancelling it")(
      "status", "print the record of job ID on NODE", cxxopts::value<std::string>(), "ID")(
      "cancel", "cancel job ID on NODE", cxxopts::value<std::string>(), "ID")(
      "attach", "join job ID on NODE: print its output kept so far, follow it, exit with its status",
      cxxopts::value<std::string>(),
      "ID")("history", "list your last jobs on NODE (-n N, default 20): id, job, state, exit status, times")(
      "n", "with --history: at most N jobs", cxxopts::value<long>(), "N")(
      "jobs", "list the jobs NODE defines that you may run (name, timeout, max_parallel, description)")(
      "fanout", "with several targets: at most N nodes at a time (default 64)", cxxopts::value<size_t>(), "N")(
      "batch", "with several targets: run N nodes at a time, the next when one ends (rolling)",
      cxxopts::value<size_t>(),
      "N")("max-failures", "with several targets: start no more nodes once N have failed", cxxopts::value<size_t>(),
           "N")("gather", "with several targets: print each distinct output once, headed by its nodes (like dshbak -c)")
      // One string each: a target set's commas are its own (targets.h).
      ("node", "NODE", cxxopts::value<std::string>())("job", "JOB", cxxopts::value<std::string>())(
          "args", "more", cxxopts::value<std::vector<std::string>>());
  opts.parse_positional({"node", "job", "args"});
  return opts;
}

// The checks, in the order a reader of the usage would make them; "" when
// the command line is whole.
std::string check(const cxxopts::ParseResult& r, const std::vector<std::string>& args,
                  const std::vector<std::string>* adhoc, SubmitOptions& o) {
  size_t queries = r.count("status") + r.count("cancel") + r.count("attach") + r.count("history") + r.count("jobs");
  if (queries > 1) return "--status, --cancel, --attach, --history and --jobs exclude each other";
  if (queries && (r.count("no-wait") || r.count("id") || r.count("param")))
    return "--status, --cancel, --attach, --history and --jobs take no --no-wait, --id or --param";
  if (r.count("n") && !r.count("history")) return "-n goes with --history";
  if (r.count("stdin") && (queries || r.count("no-wait")))
    return "-i streams input to a job it submits and waits for: not with --no-wait, --status, --cancel, --attach, "
           "--history or --jobs";
  if (r.count("history") || r.count("jobs")) {
    o.mode = r.count("history") ? SubmitOptions::Mode::history : SubmitOptions::Mode::jobs;
    if (args.size() != 1 || adhoc) return "expected --history NODE [-n N] or --jobs NODE";
    if (r.count("n")) o.count = r["n"].as<long>();
    if (o.count < 1 || o.count > 1000) return "-n wants a number from 1 to 1000";
  } else if (queries) {
    const char* which = r.count("status") ? "status" : r.count("cancel") ? "cancel" : "attach";
    o.mode = r.count("status")   ? SubmitOptions::Mode::status
             : r.count("cancel") ? SubmitOptions::Mode::cancel
                                 : SubmitOptions::Mode::attach;
    o.id = r[which].as<std::string>();
    if (args.size() != 1 || adhoc) return "expected --status, --cancel or --attach ID NODE";
  } else if (adhoc) {
    if (args.size() != 1 || adhoc->empty()) return "expected NODE -- CMD [ARG]...";
    o.argv = *adhoc;
  } else {
    if (args.size() != 2) return "expected NODE JOB";
    o.job = args[1];
  }
  o.node = args[0];
  if (r.count("param"))
    for (auto& kv : r["param"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) return "--param wants K=V, got '" + kv + "'";
      o.params[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  if (r.count("id")) o.id = r["id"].as<std::string>();
  if (r.count("timeout")) {
    o.timeout_s = r["timeout"].as<double>();
    if (!(o.timeout_s > 0 && o.timeout_s <= kMaxSeconds))  // NaN fails both
      return "--timeout wants a number of seconds > 0 and at most 100000000";
  }
  o.no_wait = r.count("no-wait") > 0;
  o.input = r.count("stdin") > 0;
  o.json = r.count("json") > 0;
  o.quiet = r.count("quiet") > 0;
  o.detach_on_interrupt = r.count("detach-on-interrupt") > 0;
  if (r.count("fanout")) o.fanout = r["fanout"].as<size_t>();
  if (r.count("batch")) o.batch = r["batch"].as<size_t>();
  if (r.count("max-failures")) o.max_failures = r["max-failures"].as<size_t>();
  if (o.fanout == 0 || (r.count("batch") && o.batch == 0) || (r.count("max-failures") && o.max_failures == 0))
    return "--fanout, --batch and --max-failures want a number >= 1";
  o.gather = r.count("gather") > 0;
  return "";
}

}  // namespace

SubmitCommand read_submit_command(const std::vector<std::string>& words) {
  SubmitCommand c;
  // Everything after "--" is an ad-hoc command, never options.
  std::vector<const char*> argv;
  std::vector<std::string> adhoc;
  bool has_dashdash = false;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0 && words[i] == "--") {
      has_dashdash = true;
      adhoc.assign(words.begin() + long(i) + 1, words.end());
      break;
    }
    argv.push_back(words[i].c_str());
  }
  auto opts = submit_options();
  cxxopts::ParseResult r;
  std::string text;
  switch (cli_parse_quietly(opts, int(argv.size()), argv.data(), r, text)) {
    case CliParse::ok:
      break;
    case CliParse::print:
      c.out = text;
      c.exit_code = kExitOk;
      return c;
    case CliParse::error:
      c.error = text;
      c.exit_code = kExitJsdFailure;
      return c;
  }
  std::vector<std::string> args;
  if (r.count("node")) args.push_back(r["node"].as<std::string>());
  if (r.count("job")) args.push_back(r["job"].as<std::string>());
  if (r.count("args"))
    for (auto& a : r["args"].as<std::vector<std::string>>()) args.push_back(a);
  std::string why = check(r, args, has_dashdash ? &adhoc : nullptr, c.options);
  if (!why.empty()) {
    c.error = "jsd-submit: error: " + why + " (see --help)";
    c.exit_code = kExitJsdFailure;
    return c;
  }
  if (r.count("config")) c.config_path = r["config"].as<std::string>();
  c.run = true;
  return c;
}

}  // namespace jsd
