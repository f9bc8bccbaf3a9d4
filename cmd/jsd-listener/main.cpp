// jsd-listener: the node's supervisor. See jsd-listener(8).
#include <cstdio>

#include "check_config.h"
#include "cli.h"
#include "exit_codes.h"
#include "keytool.h"
#include "listener.h"
#include "status.h"

int main(int argc, char** argv) {
  cxxopts::Options opts("jsd-listener",
                        "The jsd node supervisor (QueueListener): authenticates peers, starts a\n"
                        "jsd-queue-server per peer and a jsd-client per remote node.\n");
  opts.custom_help(
      "[-f FILE] [--check-config [-q] | --status [--json] | --metrics | --gen-key FILE | --public-key FILE |\n"
      "       --gen-psk FILE | --gen-ca FILE |\n"
      "       --sign-cert CA_FILE --name NAME [--groups G,...] [--days N] PUBLIC_KEY] [--ready-fd FD]");
  jsd::cli_common_options(opts);
  opts.add_options()(
      "t,check-config",
      "check the configuration (keys, certificate, allow lists, jobs' cwd too), print it with defaults filled in, and "
      "exit")("q,quiet", "with --check-config: print only the mistakes")(
      "gen-key", "write a new node private key to FILE (mode 0600), print its public key and exit",
      cxxopts::value<std::string>(), "FILE")(
      "public-key", "print the public key of the node private key in FILE and exit", cxxopts::value<std::string>(),
      "FILE")("gen-psk", "write a new pre-shared key to FILE (mode 0600) and exit", cxxopts::value<std::string>(),
              "FILE")("gen-ca", "write a new CA private key to FILE (mode 0600), print the CA public key and exit",
                      cxxopts::value<std::string>(), "FILE")(
      "sign-cert", "print a certificate for PUBLIC_KEY signed by the CA key in CA_FILE and exit",
      cxxopts::value<std::string>(), "CA_FILE")("name", "with --sign-cert: the node name the certificate binds",
                                                cxxopts::value<std::string>(), "NAME")(
      "groups", "with --sign-cert: the node's groups, comma-separated", cxxopts::value<std::string>(), "G,...")(
      "days", "with --sign-cert: days the certificate is valid (default 365)", cxxopts::value<int>(), "N")(
      "status", "print the running node's links and exit")(
      "metrics", "print the running node's metrics (Prometheus text format) and exit")(
      "json", "with --status: print JSON")("ready-fd", "write \"ready\" to FD once the node answers, then close it",
                                           cxxopts::value<int>(), "FD");
  cxxopts::ParseResult r;
  int code = 0;
  if (!jsd::cli_parse(opts, argc, argv, r, jsd::kExitStartupError, code)) return code;
  const auto& extra = r.unmatched();
  bool signing = r.count("sign-cert") > 0;
  if (extra.size() > (signing ? 1u : 0u)) {
    fprintf(stderr, "jsd-listener: error: unexpected argument '%s' (see --help)\n", extra.back().c_str());
    return jsd::kExitStartupError;
  }
  jsd::KeyToolOptions k;
  auto opt = [&](const char* name, std::string& into) {
    if (r.count(name)) into = r[name].as<std::string>();
    return r.count(name) > 0;
  };
  int actions = opt("gen-key", k.gen_key) + opt("public-key", k.public_key) + opt("gen-psk", k.gen_psk) +
                opt("gen-ca", k.gen_ca) + opt("sign-cert", k.sign_cert);
  if (actions > 1) {
    fprintf(stderr, "jsd-listener: error: give one of --gen-key, --public-key, --gen-psk, --gen-ca, --sign-cert\n");
    return jsd::kExitStartupError;
  }
  if (actions == 1) {
    opt("name", k.name);
    std::string groups;
    if (opt("groups", groups)) k.groups = jsd::split_groups(groups);
    if (r.count("days")) k.days = r["days"].as<int>();
    if (signing && extra.empty()) {
      fprintf(stderr, "jsd-listener: error: --sign-cert needs the node's PUBLIC_KEY (see --help)\n");
      return jsd::kExitStartupError;
    }
    if (signing) k.subject_key = extra[0];
    return jsd::run_keytool(k);
  }
  std::string config_path = r.count("config") ? r["config"].as<std::string>() : std::string();
  if (r.count("check-config")) return jsd::check_config({"jsd-listener", config_path, "", true, r.count("quiet") > 0});
  jsd::ListenerOptions o;
  if (!jsd::cli_load_config("jsd-listener", config_path, o.cfg)) return jsd::kExitStartupError;
  if (r.count("status")) return jsd::print_status(o.cfg, r.count("json") > 0, "jsd-listener");
  if (r.count("metrics")) return jsd::print_metrics(o.cfg, "jsd-listener");
  if (r.count("ready-fd")) o.ready_fd = r["ready-fd"].as<int>();
  return jsd::run_listener(o);
}
