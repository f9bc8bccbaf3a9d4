// The runs of a node's jobs: a queue per job (max_parallel), starting each
// through JobProcesses, its output to its submitter (with backpressure), its
// timeout and cancel, its end. The JobRunner decides what runs and keeps
// the records; this is what happens once a job is accepted.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "config.h"
#include "job_io.h"
#include "job_record.h"
#include "job_stdin.h"

namespace jsd {

// Sends one reply to the submitter: object is "job" (JSON body) or
// "job.stdout" / "job.stderr" (raw bytes); more=false ends the call.
using ReplyFn = std::function<void(const std::string& object, std::string body, bool more)>;

std::string job_error_body(const std::string& why);

class JobRuns {
 public:
  struct Run {
    JobRecord* rec = nullptr;  // owned by the store; never pruned while queued/running
    JobDef def;
    ReplyFn reply;                  // null when nobody is listening (durable, restarted)
    std::vector<ReplyFn> watchers;  // attached later (jsd-submit --attach, a re-attach)
    std::unique_ptr<JobProcess> proc;
    std::unique_ptr<RunInput> input;  // its stdin, while it takes input (jsd-submit -i)
    int pid = 0;                      // while it runs
    bool out_open = false, err_open = false;
    std::unique_ptr<JobTimer> timeout, grace, drain, persist, resume;
    bool paused = false;
    bool exited = false, timed_out = false, cancelled = false, unknown = false;
    int term_sig = 0;  // a signal asked for before its start was answered
    int64_t status = 0;
    int sig = 0;
    double ended_at = 0;  // when its supervisor saw it end
  };
  struct Hooks {
    std::function<void(const JobRecord&)> save;  // a record changed
    std::function<void()> ended;                 // a run ended and is gone
    // The runner's own settings, read when used (set after construction).
    const std::function<size_t(const std::string& from)>& backlog;
    const std::function<void()>& on_pause;
    const std::function<void()>& on_idle;
  };
  JobRuns(const Config& cfg, JobClock& clock, JobProcesses& processes, Hooks hooks)
      : cfg_(cfg), clock_(clock), procs_(processes), hooks_(std::move(hooks)) {}
  // Would a run of job start at once?
  bool starts_now(const std::string& job, int max_parallel);
  // Starts run, or queues it (telling its submitter its position).
  void enqueue(std::unique_ptr<Run> run);
  // Takes over a run started before a restart (run->proc re-attached).
  void adopt(std::unique_ptr<Run> run);
  // Cancels r's run: taken from its queue, or SIGTERM to its process group.
  void cancel(JobRecord& r, const std::string& by);
  // A chunk of the standard input of job c.id, from the node that
  // submitted it (any other's is dropped); a cut also ends a queued run.
  void input(const std::string& from, const InputChunk& c);
  // Adds a watcher to r's run (queued or running): it gets the output from
  // now on and the end. False when r has no run.
  bool watch_run(JobRecord& r, ReplyFn w);
  void stop_all();
  void kill_all();
  size_t running() const { return runs_.size(); }
  // The node stops and the supervisor does not answer (stopped, hung): each
  // job's process group gets SIGKILL from here, and the runs are let go
  // without an end (their records stay "running"; the supervisor's
  // its end in job.json, or "unknown", settles them at the next start). Returns how
  // many there were.
  size_t abandon();
  nlohmann::json status_json() const;

 private:
  void start_next(const std::string& job);
  void start(std::unique_ptr<Run> run);
  void started(Run* run);
  void not_started(Run* run, const StartError& err);
  void send_signal(Run* run, int sig);
  void open_input(Run* run);
  void watch(Run* run);
  void on_exit(Run* run, int code, int sig);
  void terminate(Run* run, const std::string& why);
  void maybe_finish(Run* run);
  void check_backlog(Run* run);
  void finish(Run* run);
  // To the submitter and every watcher.
  void tell(Run* run, const std::string& object, std::string_view body, bool more);

  const Config& cfg_;
  JobClock& clock_;
  JobProcesses& procs_;
  Hooks hooks_;
  std::map<Run*, std::unique_ptr<Run>> runs_;
  std::map<std::string, std::deque<std::unique_ptr<Run>>> waiting_;  // by job name
  std::map<std::string, int> running_count_;
  bool stopping_ = false;
};

}  // namespace jsd
