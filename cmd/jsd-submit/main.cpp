// jsd-submit: run a job on a node and exit with its exit status. See jsd-submit(1).
#include <cstdio>
#include <cstring>

#include "cli.h"
#include "exit_codes.h"
#include "submit.h"

int main(int argc, char** argv) {
  // Everything after "--" is an ad-hoc command, never options.
  std::vector<std::string> adhoc;
  bool has_dashdash = false;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      has_dashdash = true;
      adhoc.assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  cxxopts::Options opts("jsd-submit",
                        "Runs JOB (defined in NODE's configuration) on NODE: prints its start, streams its\n"
                        "output, and exits with its exit status (128+N for signal N; 255: jsd failed).\n"
                        "NODE may be a target set: NODE,NODE..., @GROUP, @all, mixed; the job then runs on\n"
                        "every node at once, each output line prefixed \"NODE: \"; the exit status is the highest.\n");
  opts.custom_help(
      "[-p K=V]... [--id ID] [--timeout S] [--no-wait] [--json] [-q] [--detach-on-interrupt] [-f FILE]\n"
      "                  [--fanout N] [--batch N] [--max-failures N] [--gather]\n"
      "                  TARGETS JOB | TARGETS -- CMD [ARG]... | --status ID NODE | --cancel ID NODE\n"
      "                  | --attach ID NODE | --history NODE [-n N] | --jobs NODE");
  opts.positional_help("");
  jsd::cli_common_options(opts);
  opts.add_options()("p,param", "pass K=V to the job as the environment variable JSD_PARAM_K (repeatable)",
                     cxxopts::value<std::vector<std::string>>(), "K=V")(
      "id", "submission id (default: random); a node runs an id at most once", cxxopts::value<std::string>(), "ID")(
      "timeout", "give up after S seconds: cancel the job and exit 255", cxxopts::value<double>(), "S")(
      "no-wait", "return once the submission is safely queued on this node; print its id")(
      "json", "print one JSON object at the end (id, node, job, state, exit status, times)")(
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
  cxxopts::ParseResult r;
  int code = 0;
  if (!jsd::cli_parse(opts, argc, argv, r, jsd::kExitJsdFailure, code)) return code;
  jsd::SubmitOptions o;
  std::vector<std::string> args;
  if (r.count("node")) args.push_back(r["node"].as<std::string>());
  if (r.count("job")) args.push_back(r["job"].as<std::string>());
  if (r.count("args"))
    for (auto& a : r["args"].as<std::vector<std::string>>()) args.push_back(a);
  auto usage = [](const char* why) {
    fprintf(stderr, "jsd-submit: error: %s (see --help)\n", why);
    return jsd::kExitJsdFailure;
  };
  size_t queries = r.count("status") + r.count("cancel") + r.count("attach") + r.count("history") + r.count("jobs");
  if (queries > 1) return usage("--status, --cancel, --attach, --history and --jobs exclude each other");
  if (queries && (r.count("no-wait") || r.count("id") || r.count("param")))
    return usage("--status, --cancel, --attach, --history and --jobs take no --no-wait, --id or --param");
  if (r.count("n") && !r.count("history")) return usage("-n goes with --history");
  if (r.count("history") || r.count("jobs")) {
    o.mode = r.count("history") ? jsd::SubmitOptions::Mode::history : jsd::SubmitOptions::Mode::jobs;
    if (args.size() != 1 || has_dashdash) return usage("expected --history NODE [-n N] or --jobs NODE");
    if (r.count("n")) o.count = r["n"].as<long>();
    if (o.count < 1 || o.count > 1000) return usage("-n wants a number from 1 to 1000");
  } else if (queries) {
    const char* which = r.count("status") ? "status" : r.count("cancel") ? "cancel" : "attach";
    o.mode = r.count("status")   ? jsd::SubmitOptions::Mode::status
             : r.count("cancel") ? jsd::SubmitOptions::Mode::cancel
                                 : jsd::SubmitOptions::Mode::attach;
    o.id = r[which].as<std::string>();
    if (args.size() != 1 || has_dashdash) return usage("expected --status, --cancel or --attach ID NODE");
  } else if (has_dashdash) {
    if (args.size() != 1 || adhoc.empty()) return usage("expected NODE -- CMD [ARG]...");
    o.argv = adhoc;
  } else {
    if (args.size() != 2) return usage("expected NODE JOB");
    o.job = args[1];
  }
  o.node = args[0];
  if (r.count("param"))
    for (auto& kv : r["param"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) return usage(("--param wants K=V, got '" + kv + "'").c_str());
      o.params[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  if (r.count("id")) o.id = r["id"].as<std::string>();
  if (r.count("timeout")) {
    o.timeout_s = r["timeout"].as<double>();
    if (!(o.timeout_s > 0 && o.timeout_s <= jsd::kMaxSeconds))  // NaN fails both
      return usage("--timeout wants a number of seconds > 0 and at most 100000000");
  }
  o.no_wait = r.count("no-wait") > 0;
  o.json = r.count("json") > 0;
  o.quiet = r.count("quiet") > 0;
  o.detach_on_interrupt = r.count("detach-on-interrupt") > 0;
  if (r.count("fanout")) o.fanout = r["fanout"].as<size_t>();
  if (r.count("batch")) o.batch = r["batch"].as<size_t>();
  if (r.count("max-failures")) o.max_failures = r["max-failures"].as<size_t>();
  if (o.fanout == 0 || (r.count("batch") && o.batch == 0) || (r.count("max-failures") && o.max_failures == 0))
    return usage("--fanout, --batch and --max-failures want a number >= 1");
  o.gather = r.count("gather") > 0;
  if (!jsd::cli_load_config("jsd-submit", r.count("config") ? r["config"].as<std::string>() : "", o.cfg))
    return jsd::kExitJsdFailure;
  return jsd::run_submit(o);
}
