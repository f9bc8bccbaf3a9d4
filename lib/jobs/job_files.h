// A started job's directory, STATE_DIR/jobs/ID.d/, shared by the listener
// and the node's job supervisor (jsd-job, job_supervisor.h), which makes it
// ahead under a temporary name (.spare-PID-N, job_spare.h) and renames it
// into place just before it spawns the job: a directory means "this id was
// started": never start it again.
//
//   job.json         the job's record as it started (one line), then, each
//                    appended as one line when it happens: "pid PID TICKS"
//                    (the job's pid and its start time in clock ticks since
//                    boot, /proc/PID/stat: how a process is found again once
//                    its supervisor is gone, and told from a later one with
//                    the same pid) just after the spawn, and "end {...}" (how
//                    the job ended) once the supervisor has told the
//                    listener, synced by its helper thread. Created empty
//                    with the directory (job_spare.h), so a job costs one
//                    file here, not three: creating a file costs ~0.2-0.4 ms
//                    of CPU on an ext4 without journal that also deletes
//                    files (issue 20, notes/jobcost). A line counts only
//                    once complete (its newline written): a reader sees an
//                    end or a pid whole, or not at all.
//   stdout.OFFSET    the job's output kept so far, in segments named by the
//   stderr.OFFSET    stream offset of their first byte (oldest dropped first)
//   end.json, pid    the same end and pid as files of their own, as
//                    supervisors before issue 20's B14 work wrote them: still
//                    read (a job such a supervisor started), no longer written
//   stdout.pipe      FIFOs: the job's stdout and stderr. The job holds each
//   stderr.pipe      open read-write, so a write never meets a pipe without
//                    reader (no SIGPIPE when its supervisor dies) and the
//                    bytes wait in the pipe until the next supervisor opens
//                    it by name and reads on; the listener holds a read end
//                    too, so what a job wrote before it ended outlives a
//                    supervisor that died meanwhile.
//   stdin.pipe       a FIFO: the job's stdin, for a job submitted with
//                    input (jsd-submit -i; else /dev/null). The listener
//                    writes the input into it; the supervisor holds a write
//                    end until the input is complete (job_supervisor.h: I).
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
// False when dir holds no end (job.json's end line, or an older end.json).
bool read_job_end(const std::string& dir, JobEnd& e);

// The kept output of stream fd (1 or 2) in dir from offset from: data, the
// offset of its first byte (> from when older bytes were dropped) and the
// stream's end offset on disk.
struct KeptOutput {
  std::string data;
  uint64_t first = 0, end = 0;
};
KeptOutput read_kept_output(const std::string& dir, int fd, uint64_t from);

// The segments of stream fd's output on disk: offset and size, in order.
std::vector<std::pair<uint64_t, uint64_t>> kept_segments(const std::string& dir, int fd);
// The end offset of stream fd's output on disk (0 when nothing is kept).
uint64_t kept_end(const std::string& dir, int fd);

// The FIFO of a job's stream fd (1 or 2) in its directory.
inline std::string job_fifo(const std::string& dir, int fd) {
  return dir + (fd == 0 ? "/stdin.pipe" : fd == 1 ? "/stdout.pipe" : "/stderr.pipe");
}

// The job file's lines (job.json above). The record: its first line (a
// raw newline in it, JSON whitespace, becomes a space).
std::string job_record_line(std::string_view record);
// The pid line, appended through fd (job.json, opened O_APPEND) by the
// supervisor after the spawn; none yet reads as no pid.
bool write_job_pid(int fd, int pid, uint64_t start_ticks);
bool read_job_pid(const std::string& dir, int& pid, uint64_t& start_ticks);
// The end line, appended through fd (job.json, O_APPEND); not synced.
bool append_job_end(int fd, std::string_view end_text);
// The record of dir's job.json (its first line; "" when unreadable).
std::string read_job_record_text(const std::string& dir);
// Of a job file's text: the record, and the complete pid and end lines'
// contents ("" when absent or incomplete).
void split_job_file(std::string_view text, std::string_view& record, std::string_view& pid, std::string_view& end);
// A process's start time (field 22 of /proc/PID/stat); 0 when it is gone.
uint64_t process_start_ticks(int pid);
// Does the job of dir still run: its pid file names a process that lives
// and started when the job did (not a later one with its pid)?
bool job_process_lives(const std::string& dir, int& pid);

// Removes dir and the files in it (a finished job's record is pruned).
void remove_job_dir(const std::string& dir);

// The names of the job directories in jobs_dir (without ".d").
std::vector<std::string> list_job_dirs(const std::string& jobs_dir);

// A Unix socket address for path: the path itself, or, when it is too long
// for sun_path, /proc/self/fd/DIRFD/NAME through dirfd (the caller opens the
// directory and closes dirfd after bind/connect). "" when neither fits.
std::string unix_socket_path(const std::string& path, int& dirfd);

}  // namespace jsd
