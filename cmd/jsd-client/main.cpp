// jsd-client (QueueClient_<remote>): started by jsd-listener. See jsd-client(8).
#include <cstdio>

#include "check_config.h"
#include "cli.h"
#include "exit_codes.h"
#include "queue_client.h"

int main(int argc, char** argv) {
  cxxopts::Options opts("jsd-client",
                        "The local end of the link to REMOTE (QueueClient_REMOTE). Started and\n"
                        "supervised by jsd-listener, which holds the other end of fd 3.\n");
  opts.custom_help("[-f FILE] [--running-config FILE] [-t] [--instance ID] [--address HOST:PORT]");
  jsd::cli_common_options(opts);
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
  if (!jsd::cli_parse(opts, argc, argv, r, jsd::kExitStartupError, code)) return code;
  if (!r.count("remote")) {
    fprintf(stderr, "jsd-client: error: missing REMOTE (see --help)\n");
    return jsd::kExitStartupError;
  }
  jsd::ClientOptions o;
  std::string config_path = r.count("config") ? r["config"].as<std::string>() : std::string();
  o.remote = r["remote"].as<std::string>();
  if (r.count("check-config")) return jsd::check_config({"jsd-client", config_path, o.remote, true, false});
  if (r.count("running-config")) config_path = r["running-config"].as<std::string>();
  if (!jsd::cli_load_config("jsd-client", config_path, o.cfg)) return jsd::kExitStartupError;
  if (r.count("address")) o.address = r["address"].as<std::string>();
  o.instance = std::strtoull(r["instance"].as<std::string>().c_str(), nullptr, 16);
  return jsd::run_queue_client(o);
}
