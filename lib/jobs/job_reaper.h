// Reaping by pid: the listener's children that libuv did not spawn (its
// job supervisor, and jobs that became its children when their supervisor
// died: it is their subreaper).
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <set>

namespace jsd {

class Child;
class Signal;

// Reaps the pids it was given, and only those (libuv reaps its own children
// by pid too). Each pid is watched through a pidfd (uvx.h's Child::watch),
// so an exit costs one wake-up and one waitpid; a pid that has none makes
// SIGCHLD try it.
class Reaper {
 public:
  explicit Reaper(uv_loop_t* loop);
  ~Reaper();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;
  // exit_status, term_signal. weak: the watch alone does not keep the
  // loop running (a long-lived helper process, not a job).
  void watch(int pid, std::function<void(int, int)> on_exit, bool weak = false);
  size_t watching() const { return watched_.size() + polls_.size(); }

 private:
  void reap();
  uv_loop_t* loop_;
  std::unique_ptr<Signal> sigchld_;
  std::map<int, std::function<void(int, int)>> watched_;  // no pidfd: tried at each SIGCHLD
  std::set<Child*> polls_;                                // watched through their pidfds
};

}  // namespace jsd
