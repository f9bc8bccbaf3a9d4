// The job runner: the node's `job` object (the JobScheduler seed's remote
// side). Runs only what the node's config defines, each job as its own
// process in its own process group, with stdin from /dev/null (or what its
// submitter streams, job_stdin.h); streams its
// output; confirms its start and its end; keeps a record.
//
// Processes, the clock and the disk are behind the interfaces of job_io.h:
// the Listener's runner uses the real ones, the unit tests fakes.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "config.h"
#include "job_io.h"
#include "job_policy.h"
#include "job_request.h"
#include "job_run.h"
#include "job_store.h"
#include "jsd_limits.h"

namespace jsd {

class JobRunner {
 public:
  // Real processes (each through libexec/jsd-job), libuv timers on loop,
  // records in STATE_DIR/jobs.
  JobRunner(uv_loop_t* loop, const Config& cfg, const std::string& libexec);
  // The given ones, which must outlive the runner.
  JobRunner(const Config& cfg, JobClock& clock, JobProcesses& processes, RecordDisk& disk);
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;
  // Loads the records; what was queued before a restart is queued again.
  bool open(std::string& err);
  // A call to the job object: {"op":"submit"|"status"|"cancel", ...}. Every
  // call is answered; nothing it throws leaves it.
  // via: the gateways a relayed request came through (it is from's, judged
  // as from's; the record and the audit log name them too).
  void handle(const std::string& from, const std::string& body, ReplyFn reply,
              const std::vector<std::string>& via = {});
  // An event to the object "job.stdin": a chunk of a job's standard input
  // (job_input.h). A malformed one is dropped with a warning.
  void input(const std::string& from, std::string_view body);
  // Ends every running job (SIGTERM, then SIGKILL after the grace period)
  // and drops the queued ones from memory (their records stay "queued" and
  // are started again when the node starts).
  void stop_all();
  void kill_all();
  size_t running() const { return runs_.running(); }
  size_t abandon() { return runs_.abandon(); }
  // Is peer in @group (config groups and the groups its certificate gave)?
  InGroupFn in_group;
  // Records an authorization decision durably; false: it could not, and
  // the job is refused. Unset: nothing is recorded (unit tests).
  std::function<bool(nlohmann::json entry, bool sync)> audit;
  std::function<void()> on_idle;  // called when the last job has ended after stop_all()
  // Bytes waiting to go to a submitting node; above kHighWater the job's
  // output is not read (the job blocks on its full pipe) until it is below
  // kLowWater. Unset: no limit.
  std::function<size_t(const std::string& from)> backlog;
  static constexpr size_t kHighWater = kOutputHighWater, kLowWater = kOutputLowWater;
  std::function<void()> on_pause;  // for tests: a job's output was paused
  // Asked again at the start of every job (one that waited in a queue, or
  // across a restart, was accepted under what may no longer hold): is its
  // submitter still a peer whose key is not revoked? false, with why,
  // refuses the start. known: the node knows enough of it now (its groups)
  // to judge the job's allow list again. Unset: every start goes ahead.
  // key: the fingerprint of the key it was submitted with (the record's
  // from_key; may be empty).
  std::function<bool(const std::string& from, const std::string& key, bool& known, std::string& why)> peer_ok;
  // The fingerprint of the key a peer linked with now ("": unknown), kept
  // in the records of its submissions.
  std::function<std::string(const std::string& from)> key_of;
  // Every record as it is saved (each change of state): the node's metrics.
  std::function<void(const JobRecord&)> on_save;
  nlohmann::json status_json() const;

 private:
  struct Real;
  JobRunner(const Config& cfg, std::unique_ptr<Real> real);
  void dispatch(const std::string& from, const std::string& body, ReplyFn& reply, const std::vector<std::string>& via);
  void submit(const std::string& from, JobRequest& req, ReplyFn& reply, const std::vector<std::string>& via);
  void status(const std::string& from, const JobRequest& req, ReplyFn& reply);
  void cancel(const std::string& from, const JobRequest& req, ReplyFn& reply);
  void attach(JobRecord& r, const JobRequest& req, ReplyFn& reply);
  void history(const std::string& from, const JobRequest& req, ReplyFn& reply);
  void list_jobs(const std::string& from, ReplyFn& reply);
  JobRecord* own_record(const std::string& from, const JobRequest& req, ReplyFn& reply);
  bool audited(const JobRecord& r, bool ok, std::string& why, bool at_start = false);
  bool may_start(const JobRecord& r, std::string& why);
  void recover();
  void adopt(const std::string& id, const std::string& started_text, double now);
  bool save(const JobRecord& r);
  void write_failed();
  void flush_records();
  void ended();

  std::unique_ptr<Real> real_;  // first: it outlives everything that uses it
  const Config& cfg_;
  JobClock& clock_;
  JobProcesses& procs_;
  JobPolicy policy_{cfg_, in_group};
  JobStore store_;
  std::unique_ptr<JobTimer> flush_timer_;
  std::unique_ptr<JobTimer> retry_timer_;
  std::set<std::string> dirty_;
  std::set<std::string> unadopted_;          // started by a previous run, adoption not done yet
  std::vector<std::function<void()>> held_;  // requests naming those, until it is
  // From open() until recover(): every submission waits too, since an id
  // the previous run sent to the supervisor has no record or directory yet.
  bool recovered_ = true;
  size_t finished_since_prune_ = 0;
  uint64_t last_prune_ms_ = 0;
  bool stopping_ = false;
  // Between the runs and the processes: the check at each job's start.
  class StartGate;
  std::unique_ptr<StartGate> gate_;
  JobRuns runs_;  // last: its runs go first
};

}  // namespace jsd
