// Starting jobs: through the node's job supervisor (jsd-job,
// job_supervisor.h), which outlives the listener; the Reaper collects the
// supervisor this listener spawned.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "job_io.h"
#include "job_reaper.h"
#include "job_supervisor.h"
#include "supervisor_watch.h"
#include "uvx.h"

namespace jsd {

class Stream;

// The real JobProcesses: the node's job supervisor (jsd-job,
// job_supervisor.h) runs the jobs; this end starts it when it is first
// needed (or connects to the one a previous run of the listener left),
// asks it to start and signal jobs on the control connection, and reads
// every job's output and end from the events connection, all on the loop:
// nothing here waits for the supervisor, so a slow (stopped, swapped out)
// supervisor makes jobs wait, never the listener.
//
// A supervisor is gone when its process is gone (a pidfd), not when it is
// slow. Then its jobs run on (their own sessions; their FIFOs keep them
// from SIGPIPE, job_files.h): this listener, their subreaper when it
// spawned that supervisor, reaps them, and a new supervisor adopts them
// (reads on from their FIFOs, writes their ends); a start that had not made
// its job's directory is sent again; one that had is a job that runs (or,
// without a pid, one whose fate is unknown).
class PosixJobProcesses : public JobProcesses {
 public:
  // jobs_dir: STATE_DIR/jobs; supervisor: the jsd-job program; keep:
  // job_output_keep; slow_after_ms: job_supervisor_slow_s.
  PosixJobProcesses(uv_loop_t* loop, std::string jobs_dir, std::string supervisor, uint64_t keep,
                    uint64_t slow_after_ms = 5000);
  ~PosixJobProcesses() override;
  std::unique_ptr<JobProcess> start(const JobSpawn& spec, StartError& err) override;
  void signal_group(int pid, int sig) override;
  std::vector<std::pair<std::string, std::string>> started_before() override;
  void when_ready(std::function<void()> fn) override;
  std::unique_ptr<JobProcess> adopt(const std::string& id, JobEnd& end) override;
  KeptOutput kept_output(const std::string& id, int fd, uint64_t from) override;
  SupervisorState supervisor_state() override;

  struct Sup;  // one job as the supervisor reports it, shared with its JobProcess
  // Sends a control message (queued while no supervisor is connected).
  void control(const std::string& payload);
  // The supervisor this one spawned (0: none, or one it connected to).
  int supervisor_pid() const { return sup_pid_; }
  uv_loop_t* loop() const { return loop_; }
  void forget(const std::string& id, const Sup* which);

 private:
  bool connect_supervisor(std::string& err);
  bool spawn_supervisor(std::string& err);
  bool supervisor(std::string& err);
  bool take_events(int fd, std::string& err);
  void listed(std::string_view list);
  void ready();
  bool take_control(int fd, std::string& err);
  // weak: the watch alone does not keep the loop running.
  void watch_supervisor(int pid, bool ours, bool weak = true);
  void on_event(std::string_view payload);
  void on_reply(std::string_view payload);
  void supervisor_gone(const std::string& why);
  void take_over(Sup& st);
  void hand_over();
  void retire();
  // The events connection keeps the loop running only while jobs run, or
  // while something waits for the supervisor's list of jobs (when_ready).
  void hold_loop();
  // Says when the supervisor turns slow and answers again (SlowWatch).
  void review_slow();
  // How many requests wait for the supervisor; oldest: when the oldest was sent.
  size_t waiting(uint64_t& oldest) const;
  std::shared_ptr<Sup> attach(const std::string& id, int pid, uint64_t out, uint64_t err);
  uv_loop_t* loop_;
  Reaper reaper_;
  std::string jobs_dir_, supervisor_;
  uint64_t keep_;
  bool subreaper_ = false;                            // the jobs of a supervisor we spawned become ours when it dies
  Stream* ctl_ = nullptr;                             // the control connection
  Stream* ev_ = nullptr;                              // the events connection
  int sup_pid_ = 0;                                   // the supervisor's pid (0: unknown)
  bool sup_ours_ = false;                             // we spawned it (its orphans are our children)
  bool spawn_next_ = false;                           // we let one go that was not ours: spawn, do not connect
  uint64_t generation_ = 0;                           // of the supervisor connection (stale watches ignore it)
  std::vector<std::string> queued_;                   // control messages while none is connected
  std::deque<std::shared_ptr<Sup>> pending_;          // starts sent, answer awaited, in order
  std::map<std::string, SupJob> running_;             // what the supervisor ran when we connected
  bool awaiting_list_ = false;                        // connected; its list of jobs not read yet
  std::vector<std::function<void()>> when_ready_;     // called once the list is read (or it is gone)
  std::map<std::string, std::shared_ptr<Sup>> sups_;  // by job id
  SlowWatch slow_;
  Timer slow_timer_;            // runs while requests wait for the supervisor
  uint64_t list_asked_ms_ = 0;  // when we connected and its list of jobs became due
};

}  // namespace jsd
