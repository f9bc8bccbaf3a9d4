#include "check_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

bool node_file_owners(const Config& cfg, bool running, PathOwners& out, std::string& err) {
  uid_t me = geteuid(), u = me;
  if (!cfg.user.empty() && !user_id(cfg.user, u)) {
    err = "user: no such user '" + printable(cfg.user, 80) + "'";
    return false;
  }
  if (running && u != me) {
    err = "user: the listener runs as " + user_name(me) + ", not " + cfg.user + " (start it as " + cfg.user +
          ": User= in its systemd unit, or runuser -u " + cfg.user + ")";
    return false;
  }
  out.firm = {0, u};
  out.learnt.clear();
  // -t with no `user`: the service user is whoever owns state_dir. Learnt
  // from the tree, so not trusted right below /tmp (safe_path.h) unless it
  // is the user running -t.
  struct stat st {};
  if (!running && cfg.user.empty() && stat(cfg.state_dir.c_str(), &st) == 0 && st.st_uid != me) {
    out.firm = {0};
    out.learnt = {st.st_uid};
  }
  return true;
}

void check_node_files(const Config& cfg, const PathOwners& owners, std::vector<std::string>& errors) {
  auto check = [&](const std::string& subject, const std::string& path, PathKind kind) {
    std::string real, why;
    // A file that is not there is its reader's to report.
    if (path.empty() || !canonical_path(path, real, why)) return;
    if (!check_trusted_path(path, kind, owners, real, why)) {
      errors.push_back("refusing " + subject + " " + path + ": " + why);
    }
  };
  check("the configuration file", cfg.path, PathKind::file);
  check("key_file", cfg.key_file, PathKind::secret);
  check("psk_file", cfg.psk_file, PathKind::secret);
  check("cert_file", cfg.cert_file, PathKind::file);
  // state_dir, or the part of it that exists: the listener makes the rest,
  // as its own.
  std::string dir = cfg.state_dir, real, why;
  while (dir.size() > 1 && !canonical_path(dir, real, why)) dir = dir.substr(0, std::max<size_t>(dir.rfind('/'), 1));
  if (real.empty() || check_trusted_path(dir, PathKind::directory, owners, real, why)) return;
  if (dir != cfg.state_dir && why.compare(0, 3, "it ") == 0) why = "its directory " + dir + why.substr(2);
  errors.push_back("refusing state_dir " + cfg.state_dir + ": " + why);
}

void check_config_extra(const Config& cfg, const std::string& remote, bool need_key, std::vector<std::string>& errors) {
  std::string err;
  Target t;
  if (!remote.empty() && !resolve_target(cfg, remote, t, err)) errors.push_back(err);
  if (need_key) {
    PathOwners owners;
    if (!node_file_owners(cfg, false, owners, err))
      errors.push_back(err);
    else
      check_node_files(cfg, owners, errors);
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
