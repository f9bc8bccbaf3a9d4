// jsd-ping: round trips to an object on a node. See jsd-ping(1).
#include <cstdio>

#include "cli.h"
#include "exit_codes.h"
#include "ping_many.h"
#include "targets.h"

int main(int argc, char** argv) {
  cxxopts::Options opts("jsd-ping",
                        "Calls the ping object (or OBJECT) on NODE and prints round-trip times.\n"
                        "NODE may be a target set (NODE,NODE..., @GROUP, @all): every node is called.\n"
                        "Exit status: 0 a reply came back (from every node), 1 none did (some node did not),\n"
                        "255 jsd failed.\n");
  opts.custom_help("[-c COUNT] [-i INTERVAL] [-s SIZE] [-W TIMEOUT] [-q] [--json] [-f FILE]");
  opts.positional_help("TARGETS [OBJECT]");
  jsd::cli_common_options(opts);
  // No default_value where the help names the default itself: cxxopts
  // would append "(default: 0)" to "(default: until interrupted)".
  opts.add_options()("c,count", "stop after COUNT calls (default: until interrupted)", cxxopts::value<long>(), "COUNT")(
      "i,interval", "seconds between calls; 0: the next call as soon as a reply arrives",
      cxxopts::value<double>()->default_value("1"),
      "INTERVAL")("s,size", "body size in bytes", cxxopts::value<size_t>()->default_value("0"), "SIZE")(
      "W,timeout", "seconds to wait for replies after the last call", cxxopts::value<double>()->default_value("10"),
      "TIMEOUT")("q,quiet", "print only the summary")("json", "print one JSON object instead of text")(
      // One string each: a target set's commas are its own (targets.h).
      "node", "NODE", cxxopts::value<std::string>())("object", "OBJECT", cxxopts::value<std::string>())(
      "args", "more", cxxopts::value<std::vector<std::string>>());
  opts.parse_positional({"node", "object", "args"});
  cxxopts::ParseResult r;
  int code = 0;
  if (!jsd::cli_parse(opts, argc, argv, r, jsd::kExitJsdFailure, code)) return code;
  jsd::PingOptions o;
  std::vector<std::string> args;
  if (r.count("node")) args.push_back(r["node"].as<std::string>());
  if (r.count("object")) args.push_back(r["object"].as<std::string>());
  if (args.empty() || r.count("args")) {
    fprintf(stderr, "jsd-ping: error: expected NODE [OBJECT] (see --help)\n");
    return jsd::kExitJsdFailure;
  }
  o.node = args[0];
  if (args.size() == 2) o.object = args[1];
  o.count = r.count("count") ? r["count"].as<long>() : 0;
  o.interval_s = r["interval"].as<double>();
  o.timeout_s = r["timeout"].as<double>();
  o.json = r.count("json") > 0;
  o.quiet = r.count("quiet") > 0;
  o.size = r["size"].as<size_t>();
  // Times are range-checked before any arithmetic on them (NaN fails every test).
  bool interval_ok = o.interval_s == 0 || (o.interval_s >= 0.001 && o.interval_s <= jsd::kMaxSeconds);
  bool timeout_ok = o.timeout_s > 0 && o.timeout_s <= jsd::kMaxSeconds;
  if (o.count < 0 || !interval_ok || !timeout_ok || o.size > 512 * 1024) {
    fprintf(stderr,
            "jsd-ping: error: COUNT must be >= 0, INTERVAL 0 or from 0.001 to 100000000, TIMEOUT > 0 and at most "
            "100000000, SIZE <= 524288\n");
    return jsd::kExitJsdFailure;
  }
  if (!jsd::cli_load_config("jsd-ping", (r.count("config") ? r["config"].as<std::string>() : std::string()), o.cfg))
    return jsd::kExitJsdFailure;
  return jsd::is_target_set(o.node) ? jsd::run_ping_many(o) : jsd::run_ping(o);
}
