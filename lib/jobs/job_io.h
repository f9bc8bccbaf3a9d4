// What the JobRunner needs from the system, behind small interfaces (ninja's
// CommandRunner and DiskInterface are the model): starting and signalling
// job processes, a clock with timers, and the disk that keeps job records.
// The real implementations are PosixJobProcesses (job_spawn.h), LoopClock
// (below) and FileRecordDisk (job_store.h); the unit tests use fakes, so the
// runner's rules (duplicates, permissions, durable acceptance, restart,
// queueing, timeouts) are tested without a loop, a process or a disk.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "job_files.h"
#include "supervisor_watch.h"

namespace jsd {

struct JobSpawn {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  std::vector<std::string> env;
  std::string cwd;
  std::string id;      // the job's id: its directory's name (job_files.h)
  std::string record;  // its record as it starts (JSON), kept beside it
  bool input = false;  // its stdin is a FIFO fed by open_input() (jsd-submit -i), else /dev/null
};

// The write end of a started job's stdin (JobSpawn::input). The bytes go
// into the job's pipe as it takes them; nothing here reads ahead of it.
class JobInput {
 public:
  virtual ~JobInput() = default;  // drops what was not written (the input was cut)
  // Queues data; flushed(n) once the pipe took everything queued so far
  // (n: the bytes it took in all), failed(why) once, when it cannot take
  // any more (the job closed its stdin, or ended).
  virtual void write(std::string_view data) = 0;
  // End of input, after what was queued: the job reads to the end and
  // then sees end-of-file.
  virtual void close() = 0;
  // Bytes queued and not yet taken by the pipe.
  virtual size_t pending() const = 0;
  std::function<void(uint64_t taken)> flushed;
  std::function<void(const std::string& why)> failed;
};

// Why a job's process did not start.
struct StartError {
  std::string what;  // e.g. "/usr/bin/nope: No such file or directory"
  // The job's own command could not be executed (not found, not executable,
  // its cwd missing): a fault of the job's definition, reported like a shell
  // does (127). Otherwise jsd itself could not start it (no descriptors, no
  // processes, no memory): jsd's failure (255).
  bool command = false;
};

// What a running job reports, on the loop thread, after run() was called.
struct JobEvents {
  // A start answered later (a JobProcess whose pid() was 0 when start()
  // returned): it runs with this pid, or it did not start (err). A slow
  // supervisor makes a job wait here; it never fails it.
  std::function<void(int pid)> started;
  std::function<void(const StartError& err)> start_failed;
  std::function<void(int fd, std::string_view bytes)> output;  // fd 1: stdout, 2: stderr
  std::function<void(int fd)> output_closed;                   // that stream is at its end (or closed)
  // once: exit code, or the signal that ended it; code -1: how it ended
  // (or whether it started) cannot be known
  std::function<void(int code, int sig)> exited;
  // Just before exited, when known: the streams' sizes and what was dropped.
  std::function<void(const JobEnd& end)> end;
};

// One started job. Destroying it stops reading its output and watching it,
// without calling back (the process itself is not signalled).
class JobProcess {
 public:
  virtual ~JobProcess() = default;
  virtual int pid() const = 0;  // 0 while its start is not answered yet
  // Signals the job's process group (once it starts, if it has not yet);
  // false when this process cannot (the caller uses signal_group).
  virtual bool signal(int sig) { return false; }
  // Starts reporting; events may come from within this call.
  virtual void run(JobEvents events) = 0;
  // Backpressure: stop and resume reading the job's output.
  virtual void pause_output() = 0;
  virtual void resume_output() = 0;
  // Stops waiting for output (a background process keeps the pipes open):
  // each stream still open is closed and reported closed. May end in the
  // JobProcess being destroyed by an output_closed handler.
  virtual void close_output() = 0;
  // The stream offsets (stdout, stderr) of the first output it reports: 0
  // for a job started here, more for one re-adopted after a restart.
  virtual uint64_t first_offset(int fd) const { return 0; }
  // The job's stdin, once it runs (pid() != 0), for a job started with
  // JobSpawn::input; null with err when it cannot be opened.
  virtual std::unique_ptr<JobInput> open_input(std::string& err) {
    err = "this job takes no input";
    return nullptr;
  }
};

class JobProcesses {
 public:
  virtual ~JobProcesses() = default;
  // Starts spec's process in its own process group, stdin from /dev/null
  // (or, with spec.input, a FIFO: JobProcess::open_input), stdout and stderr to pipes that the JobProcess reads; null
  // with err.
  virtual std::unique_ptr<JobProcess> start(const JobSpawn& spec, StartError& err) = 0;
  // Sends sig to the process group of a job started here.
  virtual void signal_group(int pid, int sig) = 0;
  // The jobs a previous run of the node started (whatever became of them):
  // id and the record kept beside it ("" when unreadable). Such an id is
  // never started again.
  virtual std::vector<std::pair<std::string, std::string>> started_before() { return {}; }
  // Calls fn once the jobs a previous run started can be found and adopted
  // (started_before(), adopt()): when the supervisor that run left has said
  // which jobs it runs, having first taken the starts its listener had sent
  // (it may be slow, or stopped: nothing waits for it meanwhile). At once
  // by default.
  virtual void when_ready(std::function<void()> fn) { fn(); }
  // Re-attaches to a job started before; null when it does not run any
  // more, with end filled in (end.known false: nobody knows how it ended).
  // Only once when_ready's fn was called: before, a job the supervisor
  // still runs is taken for one without a supervisor, and its end may be
  // written to disk before the supervisor hears of this listener (jobs_test's
  // readoption test hung on that).
  virtual std::unique_ptr<JobProcess> adopt(const std::string& id, JobEnd& end) { return nullptr; }
  // What is kept of the output of stream fd of job id, from offset from.
  virtual KeptOutput kept_output(const std::string& id, int fd, uint64_t from) { return KeptOutput{{}, from, from}; }
  // The supervisor as --status shows it: its pid, what waits for it, slow.
  virtual SupervisorState supervisor_state() { return {}; }
};

class JobTimer {
 public:
  virtual ~JobTimer() = default;  // stops it
  // Calls fn after ms, then every repeat_ms if not 0; a new start replaces
  // the old one.
  virtual void start(uint64_t ms, std::function<void()> fn, uint64_t repeat_ms = 0) = 0;
  virtual void stop() = 0;
  virtual bool active() const = 0;
};

class JobClock {
 public:
  virtual ~JobClock() = default;
  virtual double wall_time() = 0;  // seconds since the epoch
  virtual uint64_t now_ms() = 0;   // monotonic
  virtual std::unique_ptr<JobTimer> timer() = 0;
};

// The directory of job records: one text per record id.
class RecordDisk {
 public:
  struct File {
    std::string id;     // the file's name without ".json"
    std::string where;  // for messages: its path
    std::string text;
  };
  virtual ~RecordDisk() = default;
  // Creates the directory if needed and reads every record in it.
  virtual bool load_all(std::vector<File>& files, std::string& err) = 0;
  // Replaces a record atomically (a crash leaves the old or the new one);
  // sync: on stable storage before it returns. Called on any thread, one
  // call at a time.
  virtual bool write(const std::string& id, const std::string& text, bool sync, std::string& err) = 0;
  virtual bool remove(const std::string& id, std::string& err) = 0;
  // Runs work off the loop thread (creating and renaming a file costs
  // ~0.5 ms on a VM's ext4, which every link and job of the node would wait
  // for), then done on the loop thread; or both at once where it cannot.
  virtual void background(std::function<void()> work, std::function<void()> done) = 0;
};

// The real clock: libuv timers on loop.
class LoopClock : public JobClock {
 public:
  explicit LoopClock(uv_loop_t* loop) : loop_(loop) {}
  double wall_time() override;
  uint64_t now_ms() override;
  std::unique_ptr<JobTimer> timer() override;

 private:
  uv_loop_t* loop_;
};

}  // namespace jsd
