// Reaping by pid: the listener's children that libuv did not spawn (its
// job supervisor, and jobs that became its children when their supervisor
// died: it is their subreaper).
#pragma once

#include <uv.h>

#include <functional>
#include <map>

namespace jsd {

// Reaps the pids it was given, and only those (libuv reaps its own children
// by pid too). Each pid is watched through a pidfd, so an exit costs one
// wake-up and one waitpid; where pidfds are missing, SIGCHLD makes it try
// every watched pid.
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

  struct PidWatch;

 private:
  void reap();
  uv_loop_t* loop_;
  uv_signal_t* sig_;
  bool sig_inited_ = false;
  std::map<int, std::function<void(int, int)>> watched_;
  std::map<PidWatch*, bool> polls_;
};

}  // namespace jsd
