// Starting jobs: through the node's job supervisor (jsd-job,
// job_supervisor.h), which outlives the listener; the Reaper collects the
// supervisor this listener spawned.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "job_io.h"
#include "job_supervisor.h"

namespace jsd {

class Stream;

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

// The real JobProcesses: the node's job supervisor (jsd-job,
// job_supervisor.h) runs the jobs; this end starts it when it is first
// needed (or connects to the one a previous run of the listener left),
// asks it to start and signal jobs on the control connection, and reads
// every job's output and end from the events connection on the loop.
class PosixJobProcesses : public JobProcesses {
 public:
  // jobs_dir: STATE_DIR/jobs; supervisor: the jsd-job program; keep:
  // job_output_keep.
  PosixJobProcesses(uv_loop_t* loop, std::string jobs_dir, std::string supervisor, uint64_t keep)
      : loop_(loop), reaper_(loop), jobs_dir_(std::move(jobs_dir)), supervisor_(std::move(supervisor)), keep_(keep) {}
  ~PosixJobProcesses() override;
  std::unique_ptr<JobProcess> start(const JobSpawn& spec, StartError& err) override;
  void signal_group(int pid, int sig) override;
  std::vector<std::pair<std::string, std::string>> started_before() override;
  std::unique_ptr<JobProcess> adopt(const std::string& id, JobEnd& end) override;
  KeptOutput kept_output(const std::string& id, int fd, uint64_t from) override;

  struct Sup;  // one job as the supervisor reports it, shared with its JobProcess
  // Sends a control message (false: the supervisor is gone).
  bool control(const std::string& payload);
  // The supervisor this one spawned (0: none, or one it connected to).
  int supervisor_pid() const { return sup_pid_; }
  void forget(const std::string& id) {
    sups_.erase(id);
    hold_loop();
  }

 private:
  bool connect_supervisor(std::string& err);
  bool spawn_supervisor(std::string& err);
  bool supervisor(std::string& err);
  bool take_events(int fd, std::string& err);
  void on_event(std::string_view payload);
  void supervisor_gone(const std::string& why);
  // The events connection keeps the loop running only while jobs run.
  void hold_loop();
  std::unique_ptr<JobProcess> attach(const std::string& id, int pid, uint64_t out, uint64_t err);
  uv_loop_t* loop_;
  Reaper reaper_;
  std::string jobs_dir_, supervisor_;
  uint64_t keep_;
  int ctl_ = -1;  // the control connection (blocking)
  int sup_pid_ = 0;
  Stream* ev_ = nullptr;                              // the events connection, read on the loop
  std::map<std::string, SupJob> running_;             // what the supervisor ran when we connected
  std::map<std::string, std::shared_ptr<Sup>> sups_;  // by job id
};

}  // namespace jsd
