#include "link_main.h"

#include <cstdio>
#include <cstdlib>

#include "check_config.h"
#include "cli.h"
#include "exit_codes.h"
#include "queue_client.h"
#include "queue_server.h"

namespace jsd {

int queue_client_main(int argc, char** argv) {
  cxxopts::Options opts("jsd-client",
                        "The local end of the link to REMOTE (QueueClient_REMOTE). Started and\n"
                        "supervised by jsd-listener, which holds the other end of fd 3.\n");
  opts.custom_help("[-f FILE] [--running-config FILE] [-t] [--instance ID] [--address HOST:PORT]");
  cli_common_options(opts);
  opts.add_options()("running-config",
                     "read the configuration from FILE, the listener's copy of the one it runs (the file of "
                     "--config may have been edited since)",
                     cxxopts::value<std::string>(), "FILE")(
      "t,check-config",
      "check the configuration (and REMOTE, and the key), print it with defaults filled in, and exit")(
      "instance", "the listener's instance id (hex)", cxxopts::value<std::string>()->default_value("0"), "ID")(
      "address", "REMOTE's address, for a peer known by its certificate rather than from peers",
      cxxopts::value<std::string>(), "HOST:PORT")("remote", "peer name or address:port", cxxopts::value<std::string>());
  opts.parse_positional({"remote"});
  opts.positional_help("REMOTE");
  cxxopts::ParseResult r;
  int code = 0;
  if (!cli_parse(opts, argc, argv, r, kExitStartupError, code)) return code;
  if (!r.count("remote")) {
    fprintf(stderr, "jsd-client: error: missing REMOTE (see --help)\n");
    return kExitStartupError;
  }
  ClientOptions o;
  std::string config_path = r.count("config") ? r["config"].as<std::string>() : std::string();
  o.remote = r["remote"].as<std::string>();
  if (r.count("check-config")) return check_config({"jsd-client", config_path, o.remote, true, false});
  if (r.count("running-config")) config_path = r["running-config"].as<std::string>();
  if (!cli_load_config("jsd-client", config_path, o.cfg)) return kExitStartupError;
  if (r.count("address")) o.address = r["address"].as<std::string>();
  o.instance = std::strtoull(r["instance"].as<std::string>().c_str(), nullptr, 16);
  return run_queue_client(o);
}

int queue_server_main(int argc, char** argv) {
  cxxopts::Options opts("jsd-queue-server",
                        "Receives PEER's link (QueueServer_PEER) on the port jsd-listener bound\n"
                        "for it (fd 3) and hands its events to the listener (fd 4).\n");
  opts.custom_help("[-f FILE] [--running-config FILE] [-t]");
  cli_common_options(opts);
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
  if (!cli_parse(opts, argc, argv, r, kExitStartupError, code)) return code;
  if (!r.count("peer")) {
    fprintf(stderr, "jsd-queue-server: error: missing PEER (see --help)\n");
    return kExitStartupError;
  }
  ServerOptions o;
  std::string config_path = r.count("config") ? r["config"].as<std::string>() : std::string();
  if (r.count("check-config")) return check_config({"jsd-queue-server", config_path, "", false, false});
  if (r.count("running-config")) config_path = r["running-config"].as<std::string>();
  if (!cli_load_config("jsd-queue-server", config_path, o.cfg)) return kExitStartupError;
  o.peer = r["peer"].as<std::string>();
  return run_queue_server(o);
}

}  // namespace jsd
