#include "job_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jsd {

int spawn_job(const JobSpawn& s, int& out_fd, int& err_fd, std::string& err) {
  int out[2], er[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    err = std::string("pipe: ") + strerror(errno);
    return -1;
  }
  if (pipe2(er, O_CLOEXEC) != 0) {
    err = std::string("pipe: ") + strerror(errno);
    close(out[0]);
    close(out[1]);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, er[1], 2);
  if (!s.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, s.cwd.c_str());
  // A job starts clean: its own session, no blocked signals, default
  // dispositions (the listener ignores SIGPIPE; a job must not inherit that).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv, envp;
  for (auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : s.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  // A bare command name is looked up in the listener's PATH.
  int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(out[1]);
  close(er[1]);
  if (rc != 0) {
    close(out[0]);
    close(er[0]);
    err = s.argv[0] + ": " + strerror(rc);
    return -1;
  }
  out_fd = out[0];
  err_fd = er[0];
  return pid;
}

Reaper::Reaper(uv_loop_t* loop) : sig_(new uv_signal_t) {
  uv_signal_init(loop, sig_);
  sig_->data = this;
  uv_signal_start(
      sig_, [](uv_signal_t* h, int) { static_cast<Reaper*>(h->data)->reap(); }, SIGCHLD);
  uv_unref(reinterpret_cast<uv_handle_t*>(sig_));
}

Reaper::~Reaper() {
  uv_signal_stop(sig_);
  uv_close(reinterpret_cast<uv_handle_t*>(sig_), [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
}

void Reaper::watch(int pid, std::function<void(int, int)> on_exit) {
  watched_[pid] = std::move(on_exit);
  // It may have exited before we watched it: look once now.
  reap();
}

void Reaper::reap() {
  // Collect first, call after: a callback may start (and watch) a new job.
  std::vector<std::pair<std::function<void(int, int)>, std::pair<int, int>>> done;
  for (auto it = watched_.begin(); it != watched_.end();) {
    int st = 0;
    pid_t r;
    do r = waitpid(it->first, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0 || (r < 0 && errno != ECHILD)) {
      ++it;
      continue;
    }
    std::pair<int, int> how = r < 0 ? std::make_pair(255, 0)  // not ours any more: lost
                              : WIFSIGNALED(st) ? std::make_pair(0, WTERMSIG(st))
                                                : std::make_pair(WEXITSTATUS(st), 0);
    done.emplace_back(std::move(it->second), how);
    it = watched_.erase(it);
  }
  for (auto& [fn, how] : done) fn(how.first, how.second);
}

}  // namespace jsd
