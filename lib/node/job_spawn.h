// Starting jobs: each through its own supervisor (jsd-job, job_supervisor.h),
// spawned with posix_spawn (vfork-style in glibc) instead of uv_spawn's
// fork(): the listener's address space is not copied for every job, which
// is most of what starting a short job costs.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "job_io.h"

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

// The real JobProcesses: a supervisor per job, its stream read on the loop,
// the Reaper for the supervisors this listener spawned.
class PosixJobProcesses : public JobProcesses {
 public:
  // jobs_dir: STATE_DIR/jobs; supervisor: the jsd-job program; keep:
  // job_output_keep.
  PosixJobProcesses(uv_loop_t* loop, std::string jobs_dir, std::string supervisor, uint64_t keep)
      : loop_(loop), reaper_(loop), jobs_dir_(std::move(jobs_dir)), supervisor_(std::move(supervisor)), keep_(keep) {}
  std::unique_ptr<JobProcess> start(const JobSpawn& spec, StartError& err) override;
  void signal_group(int pid, int sig) override;
  std::vector<std::pair<std::string, std::string>> started_before() override;
  std::unique_ptr<JobProcess> adopt(const std::string& id, JobEnd& end) override;
  KeptOutput kept_output(const std::string& id, int fd, uint64_t from) override;

  struct Sup;  // one supervisor's stream, shared with its JobProcess

 private:
  std::unique_ptr<JobProcess> attach(int fd, int pid, const std::string& dir, uint64_t out, uint64_t err);
  uv_loop_t* loop_;
  Reaper reaper_;
  std::string jobs_dir_, supervisor_;
  uint64_t keep_;
  std::map<int, std::weak_ptr<Sup>> sups_;  // by the job's pid
};

}  // namespace jsd
