// The node's job supervisor (the program jsd-job, in the spirit of conmon
// and containerd's shims): one small process per node, between the listener
// and every job it runs, that owns the jobs' stdio and exit statuses, so
// that the listener can die (SIGKILL, OOM) and restart without losing a
// job, its output or how it ended. The listener spawns it in its own
// session when it first needs it; it spawns each job in another session,
// writes the job's output into the job's directory as it comes
// (job_files.h), forwards it to whichever listener is connected, and
// writes each job's end durably. It ends once no listener is connected and
// no job runs. One process for all jobs, not one per job: a process start
// costs milliseconds on a small VM, which a warm `jsd-submit NODE true`
// cannot afford twice (jsd(7), "JOBS AND THEIR SUPERVISOR").
//
// A listener holds two connections to it: the first listener the socket
// pairs it was spawned with (descriptors 3 and 4), a restarted one two
// connections to JOBS_DIR/supervisor.sock, whose first frame names them.
// Every message is a frame (frame.h) whose first byte is its type:
//   control (listener -> supervisor, one reply where noted):
//     C                  "this connection is the control one"
//     R id cwd argv env record  start a job  -> S pid, or E end (why not)
//     K id sig           signal the job's process group
//     P id / U id        stop / go on reading the job's output (backpressure)
//     A id pid flags     take over a running job whose supervisor died: read
//                        on from its FIFOs, write its end; flag 1: the
//                        listener reaps it (it is the job's subreaper) and
//                        says how it ended with X, else the job's end is
//                        seen through a pidfd and its status is unknown
//     X id code sig      how an adopted job ended (code -1: unknown)
//     I id               the job's standard input is complete: let go of
//                        the write end of its stdin FIFO (held so that a
//                        listener that dies mid-input never makes the job
//                        see an end of input it was not sent; such a job
//                        is killed when its listener goes)
//   events (supervisor -> listener):
//     V                  (listener -> supervisor) "this one is for events"
//     H {id pid out err} first: every job it runs, and the stream offsets
//                        from which each one's output follows
//     O id fd bytes      output of the job's stream fd
//     E id end           how the job ended (job_end_text)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "job_files.h"

namespace jsd {

enum class SupMsg : char {
  control = 'C',
  events = 'V',
  start = 'R',
  kill = 'K',
  pause = 'P',
  resume = 'U',
  started = 'S',
  jobs = 'H',
  adopt = 'A',
  reaped = 'X',
  input_done = 'I',
  output = 'O',
  end = 'E',
};

struct SupStart {
  std::string id, cwd;  // cwd "": the supervisor's own
  std::vector<std::string> argv, env;
  std::string record;  // the job's record as it starts: its directory's job.json
  bool input = false;  // its stdin is the FIFO stdin.pipe in its directory (jsd-submit -i), else /dev/null
};
std::string encode_sup_start(const SupStart& s);
bool decode_sup_start(std::string_view msg, SupStart& s);

// K (with sig), P, U.
std::string encode_sup_job(SupMsg type, std::string_view id, int sig = 0);
bool decode_sup_job(std::string_view msg, std::string_view& id, int& sig);

std::string encode_sup_output(std::string_view id, int fd, std::string_view bytes);
bool decode_sup_output(std::string_view msg, std::string_view& id, int& fd, std::string_view& bytes);

// E: on the events connection with the job's id; as a reply to R without.
std::string encode_sup_end(std::string_view id, const JobEnd& e);
// The same from an end's text (job_end_text), as job.json's end line holds it.
std::string encode_sup_end_text(std::string_view id, std::string_view text);
bool decode_sup_end(std::string_view msg, std::string_view& id, JobEnd& e);

// A: a running job another supervisor started.
std::string encode_sup_adopt(std::string_view id, int pid, bool listener_reaps);
bool decode_sup_adopt(std::string_view msg, std::string_view& id, int& pid, bool& listener_reaps);
// X: how an adopted job ended, as its reaper saw it (code -1: unknown).
std::string encode_sup_reaped(std::string_view id, int code, int sig);
bool decode_sup_reaped(std::string_view msg, std::string_view& id, int& code, int& sig);

struct SupJob {
  std::string id;
  int pid = 0;
  uint64_t out = 0, err = 0;
};
std::string encode_sup_jobs(const std::vector<SupJob>& jobs);
bool decode_sup_jobs(std::string_view msg, std::vector<SupJob>& jobs);

inline std::string supervisor_socket(const std::string& jobs_dir) { return jobs_dir + "/supervisor.sock"; }

struct SupervisorOptions {
  std::string jobs_dir;               // STATE_DIR/jobs: the jobs' directories, the socket, the lock
  uint64_t keep = 1 << 20;            // job_output_keep: bytes kept per stream
  int control_fd = 3, events_fd = 4;  // the spawning listener's connections
};

// Runs until no listener is connected and no job runs; its exit status (0,
// or 1 when it could not do its part) is for its parent's log only.
int run_supervisor(const SupervisorOptions& o);

// Parses jsd-job's command line: --jobs-dir DIR --keep BYTES
bool parse_supervisor_args(int argc, char** argv, SupervisorOptions& o, std::string& err);

}  // namespace jsd
