#include "job_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
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

struct Reaper::PidWatch {
  uv_poll_t poll;
  int fd = -1;
  int pid = 0;
  std::function<void(int, int)> cb;
  Reaper* owner = nullptr;
};

namespace {
void decode_status(int st, int& code, int& sig) {
  code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
  sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}
void close_watch(uv_poll_t* p) {
  uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) {
    auto* w = static_cast<Reaper::PidWatch*>(h->data);
    ::close(w->fd);
    delete w;
  });
}
}  // namespace

Reaper::Reaper(uv_loop_t* loop) : loop_(loop), sig_(new uv_signal_t) {
  uv_signal_init(loop, sig_);
  sig_->data = this;
  uv_signal_start(
      sig_, [](uv_signal_t* h, int) { static_cast<Reaper*>(h->data)->reap(); }, SIGCHLD);
  uv_unref(reinterpret_cast<uv_handle_t*>(sig_));
}

Reaper::~Reaper() {
  for (auto& [w, b] : polls_) {
    uv_poll_stop(&w->poll);
    close_watch(&w->poll);
  }
  uv_signal_stop(sig_);
  uv_close(reinterpret_cast<uv_handle_t*>(sig_), [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
}

void Reaper::watch(int pid, std::function<void(int, int)> on_exit) {
  // glibc 2.36 declares pidfd_open without C linkage for C++; ask the kernel.
  int fd = int(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    auto* w = new PidWatch;
    w->fd = fd;
    w->pid = pid;
    w->cb = std::move(on_exit);
    w->owner = this;
    if (uv_poll_init(loop_, &w->poll, fd) == 0) {
      w->poll.data = w;
      polls_[w] = true;
      uv_poll_start(&w->poll, UV_READABLE, [](uv_poll_t* p, int, int) {
        auto* pw = static_cast<PidWatch*>(p->data);
        int st = 0;
        pid_t r;
        do r = waitpid(pw->pid, &st, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0) return;  // not yet (a spurious wake-up)
        uv_poll_stop(p);
        auto cb = std::move(pw->cb);
        pw->owner->polls_.erase(pw);
        close_watch(p);
        int code = 255, sig = 0;
        if (r > 0) decode_status(st, code, sig);
        cb(code, sig);
      });
      return;
    }
    on_exit = std::move(w->cb);
    ::close(fd);
    delete w;
  }
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
    std::pair<int, int> how = r < 0             ? std::make_pair(255, 0)  // not ours any more: lost
                              : WIFSIGNALED(st) ? std::make_pair(0, WTERMSIG(st))
                                                : std::make_pair(WEXITSTATUS(st), 0);
    done.emplace_back(std::move(it->second), how);
    it = watched_.erase(it);
  }
  for (auto& [fn, how] : done) fn(how.first, how.second);
}

}  // namespace jsd
