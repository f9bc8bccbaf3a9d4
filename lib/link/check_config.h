// `-t` / `--check-config` for the three daemons.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "safe_path.h"

namespace jsd {

struct CheckConfigOptions {
  std::string prog;         // for the "prog: error: ..." lines
  std::string config_path;  // -f FILE ("": $JSD_CONFIG, /etc/jsd/jsd.conf, the defaults)
  std::string remote;       // jsd-client: REMOTE must resolve
  bool need_key = false;    // the key file, psk, certificate and pinned keys too
  bool quiet = false;       // -q: print nothing when the configuration is fine
};

// -t / --check-config: reads the configuration and reports every mistake in
// one pass, one "prog: error: ..." line each: the file's keys, then (when the
// file was JSON) REMOTE, the keys and certificate (need_key) and each job's
// cwd. Prints the effective configuration as JSON (unless quiet) when the
// file's keys are right. Returns the exit code: 0, or 1 (kExitStartupError)
// after any mistake.
int check_config(const CheckConfigOptions& o);

// The mistakes -t finds beyond the file's own keys: REMOTE, the trust
// material (need_key) and the jobs' working directories.
void check_config_extra(const Config& cfg, const std::string& remote, bool need_key, std::vector<std::string>& errors);

// Who may own what the node reads (its configuration file, keys, psk,
// certificate, state_dir): root and the service user. running: asked by
// the listener itself, which is the service user; a `user` it does not run
// as is a mistake (err). Otherwise (-t): `user`, or else the owner of
// state_dir, or else the user running -t.
bool node_file_owners(const Config& cfg, bool running, PathOwners& out, std::string& err);

// OpenSSH's StrictModes for the files the node trusts: the configuration
// file, key_file, psk_file, cert_file and state_dir belong to owners, and
// neither they nor any directory above them can be written by anyone else.
// One line per refusal, naming the file and the owner or mode found.
void check_node_files(const Config& cfg, const PathOwners& owners, std::vector<std::string>& errors);

}  // namespace jsd
