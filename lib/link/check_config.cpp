#include "check_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "crypto.h"
#include "exit_codes.h"
#include "log.h"
#include "trust.h"
#include "uvx.h"

namespace jsd {

void check_config_extra(const Config& cfg, const std::string& remote, bool need_key, std::vector<std::string>& errors) {
  std::string err;
  Target t;
  if (!remote.empty() && !resolve_target(cfg, remote, t, err)) errors.push_back(err);
  if (need_key) {
    // Keys, psk, certificate (its CA and expiry) and pinned keys.
    Trust trust;
    load_trust(cfg, trust, errors);
  }
  // A job whose cwd is missing fails at every start, long after the
  // operator who wrote it has gone: say so now. (The listener's user may see
  // less than -t's; a path it cannot reach fails the same way.)
  for (auto& [name, job] : cfg.jobs) {
    if (job.cwd.empty()) continue;
    std::string k = "jobs." + printable(name, 80) + ".cwd: '" + printable(job.cwd, 200) + "'";
    struct stat st;
    if (stat(job.cwd.c_str(), &st) != 0)
      errors.push_back(k + (errno == ENOENT ? std::string(" does not exist") : ": " + std::string(strerror(errno))));
    else if (!S_ISDIR(st.st_mode))
      errors.push_back(k + " is not a directory");
  }
}

int check_config(const CheckConfigOptions& o) {
  Config cfg;
  std::vector<std::string> errors;
  bool json_read = false;
  bool file_ok = load_config(o.config_path, cfg, errors, &json_read);
  // A file that is not JSON says nothing about keys or jobs: checking the
  // defaults in its place would only add lines that are not mistakes.
  if (json_read) check_config_extra(cfg, o.remote, o.need_key, errors);
  for (auto& e : errors) fprintf(stderr, "%s: error: %s\n", o.prog.c_str(), e.c_str());
  // The effective configuration, when the file says what it is: also when a
  // key file is missing, so that what the node would use can be seen.
  if (!o.quiet && file_ok) std::cout << config_to_json(cfg).dump(2) << "\n";
  return errors.empty() ? kExitOk : kExitStartupError;
}

}  // namespace jsd
