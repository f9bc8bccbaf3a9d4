// jsd-listener: the node's supervisor. See jsd-listener(8).
#include <cstdio>
#include <iostream>

#include "check_config.h"
#include "cli.h"
#include "crypto.h"
#include "listener.h"
#include "status.h"

int main(int argc, char** argv) {
  cxxopts::Options opts("jsd-listener", "The jsd node supervisor (QueueListener): authenticates peers, starts a\n"
                                        "jsd-queue-server per peer and a jsd-client per remote node.\n");
  opts.custom_help("[-f FILE] [--check-config | --status [--json] | --gen-key FILE] [--ready-fd FD]");
  jsd::cli_common_options(opts);
  opts.add_options()("t,check-config", "check the configuration, print it with defaults filled in, and exit")(
      "gen-key", "write a new random cluster key to FILE (mode 0600) and exit", cxxopts::value<std::string>(), "FILE")(
      "status", "print the running node's links and exit")("json", "with --status: print JSON")(
      "ready-fd", "write \"ready\" to FD once the node answers, then close it", cxxopts::value<int>(), "FD");
  cxxopts::ParseResult r;
  int code = 0;
  if (!jsd::cli_parse(opts, argc, argv, r, 1, code)) return code;
  if (!r.unmatched().empty()) {
    fprintf(stderr, "jsd-listener: error: unexpected argument '%s' (see --help)\n", r.unmatched()[0].c_str());
    return 1;
  }
  if (r.count("gen-key")) {
    std::string err, path = r["gen-key"].as<std::string>();
    if (!jsd::crypto_init(err) || !jsd::generate_key_file(path, err)) {
      fprintf(stderr, "jsd-listener: error: %s\n", err.c_str());
      return 1;
    }
    fprintf(stderr, "jsd-listener: wrote a new cluster key to %s (copy it to every node, mode 0600)\n", path.c_str());
    return 0;
  }
  jsd::ListenerOptions o;
  if (!jsd::cli_load_config("jsd-listener", (r.count("config") ? r["config"].as<std::string>() : std::string()), o.cfg)) return 1;
  if (r.count("check-config")) return jsd::check_config_and_print("jsd-listener", o.cfg, "", true);
  if (r.count("status")) return jsd::print_status(o.cfg, r.count("json") > 0, "jsd-listener");
  if (r.count("ready-fd")) o.ready_fd = r["ready-fd"].as<int>();
  return jsd::run_listener(o);
}
