// jsd-queue-server (QueueServer_<peer>): started by jsd-listener. See jsd-queue-server(8).
#include <cstdio>

#include "check_config.h"
#include "cli.h"
#include "exit_codes.h"
#include "queue_server.h"

int main(int argc, char** argv) {
  cxxopts::Options opts("jsd-queue-server",
                        "Receives PEER's link (QueueServer_PEER) on the port jsd-listener bound\n"
                        "for it (fd 3) and hands its events to the listener (fd 4).\n");
  opts.custom_help("[-f FILE] [--running-config FILE] [-t]");
  jsd::cli_common_options(opts);
  opts.add_options()("running-config",
                     "read the configuration from FILE, the listener's copy of the one it runs (the file of "
                     "--config may have been edited since)",
                     cxxopts::value<std::string>(),
                     "FILE")("t,check-config", "check the configuration, print it with defaults filled in, and exit")(
      "peer", "the peer node's name", cxxopts::value<std::string>());
  opts.parse_positional({"peer"});
  opts.positional_help("PEER");
  cxxopts::ParseResult r;
  int code = 0;
  if (!jsd::cli_parse(opts, argc, argv, r, jsd::kExitStartupError, code)) return code;
  if (!r.count("peer")) {
    fprintf(stderr, "jsd-queue-server: error: missing PEER (see --help)\n");
    return jsd::kExitStartupError;
  }
  jsd::ServerOptions o;
  std::string config_path = r.count("config") ? r["config"].as<std::string>() : std::string();
  if (r.count("check-config")) return jsd::check_config({"jsd-queue-server", config_path, "", false, false});
  if (r.count("running-config")) config_path = r["running-config"].as<std::string>();
  if (!jsd::cli_load_config("jsd-queue-server", config_path, o.cfg)) return jsd::kExitStartupError;
  o.peer = r["peer"].as<std::string>();
  return jsd::run_queue_server(o);
}
