#include "job_reaper.h"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <utility>
#include <vector>

#include "uvx.h"

namespace jsd {

// SIGCHLD only for the pids that have no pidfd watch (uvx's Signal logs
// when it cannot be watched; jobs are still reaped where pidfds work).
Reaper::Reaper(uv_loop_t* loop) : loop_(loop), sigchld_(std::make_unique<Signal>(loop, SIGCHLD, [this] { reap(); })) {}

Reaper::~Reaper() {
  // The processes run on unwatched: their owner (the listener) is done.
  for (Child* c : polls_) {
    c->on_exit = nullptr;
    c->release();
  }
}

void Reaper::watch(int pid, std::function<void(int, int)> on_exit, bool weak) {
  std::string err;
  if (Child* c = Child::watch(loop_, pid, err)) {
    if (weak) c->unref();
    polls_.insert(c);
    c->on_exit = [this, c, fn = std::move(on_exit)](int64_t code, int sig) {
      polls_.erase(c);  // it frees itself after this returns
      fn(int(code), sig);
    };
    return;
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
