// Starting jobs with posix_spawn (vfork-style in glibc) instead of
// uv_spawn's fork(): the listener's address space is not copied for every
// job, which is most of what starting a short job costs.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "job_io.h"

namespace jsd {

// Starts the process in its own session (so its process group can be
// signalled as one), stdin from /dev/null, stdout and stderr to new pipes
// whose read ends are returned. Returns the pid, or -1 with err.
int spawn_job(const JobSpawn& s, int& out_fd, int& err_fd, StartError& err);

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
  // exit_status, term_signal
  void watch(int pid, std::function<void(int, int)> on_exit);
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

// The real JobProcesses: spawn_job, the pipes read on the loop, the Reaper.
class PosixJobProcesses : public JobProcesses {
 public:
  explicit PosixJobProcesses(uv_loop_t* loop) : loop_(loop), reaper_(loop) {}
  std::unique_ptr<JobProcess> start(const JobSpawn& spec, StartError& err) override;
  void signal_group(int pid, int sig) override;

 private:
  uv_loop_t* loop_;
  Reaper reaper_;
};

}  // namespace jsd
