// The job table of the node's job supervisor (job_supervisor.h): the jobs
// it runs or adopted, each with its directory, its two output streams and
// how it ended. It starts and adopts jobs, takes their output, reaps them
// and writes their ends; the supervisor's loop (job_supervisor.cpp) owns
// the connections and says where replies and events go. Only the
// supervisor includes this.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "job_spare.h"
#include "job_supervisor.h"
#include "job_supervisor_parts.h"
#include "job_syncer.h"

namespace jsd::supervisor_parts {

class JobTable {
 public:
  JobTable(std::string jobs_dir, uint64_t keep) : jobs_dir_(std::move(jobs_dir)), keep_(keep) {}

  // Starts a job; returns the reply to its R message: S pid, or E end.
  std::string start(const SupStart& s);
  // Makes the next start's directory ahead (job_spare.h), once a start
  // took the last one: called by the loop once the answer is sent.
  void prepare_spare();
  // A running job a supervisor that died started (the A message).
  void adopt(std::string_view id, int pid, bool listener_reaps);
  // How an adopted job ended, as its reaper, the listener, saw it (X).
  void reaped(std::string_view id, int code, int sig);
  // K, P, U for one job.
  void signal(std::string_view id, int sig);
  void pause(std::string_view id, bool paused);
  // I: the job's input is complete: our write end of its stdin goes.
  void input_done(std::string_view id);
  // The listener is gone: the adopted jobs it would have reaped can only
  // be seen to end now, and those whose input is incomplete are killed.
  void listener_gone();
  // A new events connection: every job with the offsets its output
  // follows from; nothing is paused for it yet.
  std::vector<SupJob> list_for_new_listener();

  // Collects every child that ended (after SIGCHLD).
  void reap();
  // Reads one job's stream; what it read goes to ev too, if connected.
  void read_pipe(Job& j, Kept& k, Conn* ev);
  // An adopted job's pidfd says it ended.
  void pidfd_ended(Job& j);
  // Writes the ends of the jobs that ended and whose output is read (or
  // whose drain time is over) and forgets them; ev is reset if it fails.
  void finish_ended(int64_t now, std::unique_ptr<Conn>& ev);

  bool empty() const { return jobs_.empty(); }
  std::map<std::string, std::unique_ptr<Job>>& jobs() { return jobs_; }

 private:
  void mark_ended(Job& j);
  void finish(Job& j, std::unique_ptr<Conn>& ev);
  bool spawn(Job& j, const SupStart& s, SpareDir& sp, std::string& err, bool& command);
  void init_streams(Job& j) const;

  std::string jobs_dir_;
  uint64_t keep_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  std::map<pid_t, Job*> by_pid_;
  std::unique_ptr<SpareDir> spare_;  // the next start's directory, made ahead
  bool want_spare_ = false;          // a start took it: make another when idle
  Syncer syncer_;                    // joined (every end synced) before the process ends
};

// A refusal or a failed start, as an end.
JobEnd failed_end(const std::string& why, bool command);

}  // namespace jsd::supervisor_parts
