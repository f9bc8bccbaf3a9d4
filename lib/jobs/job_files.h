// A started job's directory, STATE_DIR/jobs/ID.d/, shared by the listener
// and the node's job supervisor (jsd-job, job_supervisor.h), which makes it
// under a temporary name (ID.new) and renames it into place just before it
// spawns the job: a directory means "this id was started": never start it
// again.
//
//   job.json         the job's record as it started
//   stdout.OFFSET    the job's output kept so far, in segments named by the
//   stderr.OFFSET    stream offset of their first byte (oldest dropped first)
//   end.json         how the job ended: written by the supervisor once it
//                    has told the listener (temporary file, rename; synced
//                    by its helper thread)
//
// Beside the directories: supervisor.sock, where a restarted listener
// connects, and supervisor.lock (one supervisor a node).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace jsd {

inline std::string job_dir(const std::string& jobs_dir, const std::string& id) { return jobs_dir + "/" + id + ".d"; }

// How a job ended, as its supervisor saw it.
struct JobEnd {
  bool known = false;  // false: nobody knows (its supervisor died first)
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  double ended = 0;
  std::string error;                          // it could not be started: why
  bool command = false;                       // ... and that was its command's fault (127)
  uint64_t out_bytes = 0, err_bytes = 0;      // what it wrote to each stream
  uint64_t out_dropped = 0, err_dropped = 0;  // the oldest bytes no longer kept
};

std::string job_end_text(const JobEnd& e);
bool parse_job_end_text(std::string_view text, JobEnd& e);
// False when the file is missing or not an end record.
bool read_job_end(const std::string& dir, JobEnd& e);

// The kept output of stream fd (1 or 2) in dir from offset from: data, the
// offset of its first byte (> from when older bytes were dropped) and the
// stream's end offset on disk.
struct KeptOutput {
  std::string data;
  uint64_t first = 0, end = 0;
};
KeptOutput read_kept_output(const std::string& dir, int fd, uint64_t from);

// Removes dir and the files in it (a finished job's record is pruned).
void remove_job_dir(const std::string& dir);

// The names of the job directories in jobs_dir (without ".d").
std::vector<std::string> list_job_dirs(const std::string& jobs_dir);

// A Unix socket address for path: the path itself, or, when it is too long
// for sun_path, /proc/self/fd/DIRFD/NAME through dirfd (the caller opens the
// directory and closes dirfd after bind/connect). "" when neither fits.
std::string unix_socket_path(const std::string& path, int& dirfd);

}  // namespace jsd
