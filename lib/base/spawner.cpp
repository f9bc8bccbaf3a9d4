// The one way jsd starts a process (spawner.h).
#include "spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace jsd {

std::string search_path(const std::vector<std::string>* env) {
  if (!env) {
    const char* p = getenv("PATH");
    if (p) return p;
  } else {
    for (auto& e : *env)
      if (e.rfind("PATH=", 0) == 0) return e.substr(5);
  }
  return "/usr/local/bin:/usr/bin:/bin";
}

std::string find_program(const std::string& name, const std::string& path, int& err) {
  err = 0;
  if (name.empty()) {
    err = ENOENT;
    return "";
  }
  if (name.find('/') != std::string::npos) return name;
  int first_err = ENOENT;
  size_t at = 0;
  for (;;) {
    size_t colon = path.find(':', at);
    std::string d = path.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
    std::string p = (d.empty() ? "." : d) + "/" + name;
    struct stat st;
    if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(p.c_str(), X_OK) == 0) return p;
      first_err = EACCES;
    }
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  err = first_err;
  return "";
}

int spawn_process(const ProcessSpec& spec, pid_t& pid) {
  int lookup = 0;
  std::string prog = find_program(spec.file, search_path(spec.env), lookup);
  if (prog.empty()) return lookup;
  if (spec.argv.empty()) return EINVAL;
  const int n = int(spec.fds.size());
  // A source among the targets 0..n-1 could be overwritten by an earlier
  // dup2 (and one equal to its own target would keep its close-on-exec):
  // each is copied above them first, and the copies closed after.
  std::vector<int> src(spec.fds), moved;
  auto undo = [&] {
    for (int fd : moved) ::close(fd);
  };
  for (int& fd : src) {
    if (fd < 0 || fd >= n) continue;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, n);
    if (high < 0) {
      int e = errno;
      undo();
      return e;
    }
    moved.push_back(fd = high);
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  for (int i = 0; i < n; ++i) {
    if (src[size_t(i)] < 0)
      posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
    else
      posix_spawn_file_actions_adddup2(&fa, src[size_t(i)], i);
  }
  // Descriptors n and up are closed in the child (close_range), whatever
  // their close-on-exec flag.
  posix_spawn_file_actions_addclosefrom_np(&fa, n);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  int flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (spec.new_session ? POSIX_SPAWN_SETSID : 0);
  posix_spawnattr_setflags(&at, static_cast<short>(flags));
  std::vector<char*> args, envp;
  for (auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (spec.env) {
    for (auto& e : *spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  pid_t child = -1;
  int rc = posix_spawn(&child, prog.c_str(), &fa, &at, args.data(), spec.env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  undo();
  if (rc == 0) pid = child;
  return rc;
}

}  // namespace jsd
