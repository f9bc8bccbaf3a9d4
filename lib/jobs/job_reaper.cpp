#include "job_reaper.h"

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "log.h"
#include "uvx.h"

namespace jsd {

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
  int rc = uv_signal_init(loop, sig_);
  sig_inited_ = rc == 0;
  if (rc == 0) {
    sig_->data = this;
    rc = uv_signal_start(
        sig_, [](uv_signal_t* h, int) { static_cast<Reaper*>(h->data)->reap(); }, SIGCHLD);
    uv_unref(reinterpret_cast<uv_handle_t*>(sig_));
  }
  // Jobs are still reaped where pidfds work (Linux 5.3 and later).
  if (rc != 0) log_error("cannot watch SIGCHLD: " + uv_error(rc));
}

Reaper::~Reaper() {
  for (auto& [w, b] : polls_) {
    uv_poll_stop(&w->poll);
    close_watch(&w->poll);
  }
  if (!sig_inited_) {
    delete sig_;
    return;
  }
  uv_signal_stop(sig_);
  uv_close(reinterpret_cast<uv_handle_t*>(sig_), [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
}

void Reaper::watch(int pid, std::function<void(int, int)> on_exit, bool weak) {
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
      int rc = uv_poll_start(&w->poll, UV_READABLE, [](uv_poll_t* p, int, int) {
        auto* pw = static_cast<PidWatch*>(p->data);
        int st = 0;
        pid_t got;
        do got = waitpid(pw->pid, &st, WNOHANG);
        while (got < 0 && errno == EINTR);
        if (got == 0) return;  // not yet (a spurious wake-up)
        uv_poll_stop(p);
        auto cb = std::move(pw->cb);
        pw->owner->polls_.erase(pw);
        close_watch(p);
        int code = 255, sig = 0;
        if (got > 0) decode_status(st, code, sig);
        cb(code, sig);
      });
      if (rc == 0) {
        if (weak) uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
        polls_[w] = true;
        return;
      }
      // Watch it the SIGCHLD way instead (the poll handle closes the pidfd).
      on_exit = std::move(w->cb);
      close_watch(&w->poll);
    } else {
      on_exit = std::move(w->cb);
      ::close(fd);
      delete w;
    }
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
    pid_t got;
    do got = waitpid(it->first, &st, WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == 0 || (got < 0 && errno != ECHILD)) {
      ++it;
      continue;
    }
    std::pair<int, int> how = got < 0           ? std::make_pair(255, 0)  // not ours any more: lost
                              : WIFSIGNALED(st) ? std::make_pair(0, WTERMSIG(st))
                                                : std::make_pair(WEXITSTATUS(st), 0);
    done.emplace_back(std::move(it->second), how);
    it = watched_.erase(it);
  }
  for (auto& [fn, how] : done) fn(how.first, how.second);
}

}  // namespace jsd
