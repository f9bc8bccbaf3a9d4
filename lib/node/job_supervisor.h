// The per-job supervisor (the program jsd-job, in the spirit of conmon and
// containerd's shims): a small process between the listener and one job
// that owns the job's stdio and exit status, so that the listener can die
// (SIGKILL, OOM) and restart without losing the job, its output or how it
// ended. The listener spawns it in its own session; it spawns the job in
// another one, writes the job's output into the job's directory as it comes
// (job_files.h) and forwards it to whichever listener is connected, and
// writes the job's end durably before it exits.
//
// Messages on its stream (fd 3 from the listener that spawned it, or a
// connection to its socket from a restarted one), each a frame (frame.h)
// whose first byte is its type:
//   S pid(u32)          the job started                      (to the listener)
//   H pid(u32) out(u64) err(u64)  hello to a re-adopting listener: the
//                       stream offsets from which output follows
//   O fd(u8) bytes      output of stream fd
//   E end-json          how it ended (job_end_text), or why it did not start
//   K sig(u8)           send sig to the job's process group   (from the listener)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace jsd {

enum class SupMsg : char { started = 'S', hello = 'H', output = 'O', end = 'E', kill = 'K' };

struct SupervisorOptions {
  std::string dir;                // the job's directory (job_files.h), created by the listener
  uint64_t keep = 1 << 20;        // job_output_keep: bytes kept per stream
  std::string cwd;                // the job's working directory ("" : ours)
  std::vector<std::string> argv;  // the job's command; its environment is ours
  int fd = 3;                     // the stream to the listener that spawned us
};

// Runs the job to its end; the supervisor's exit status (0, or 1 when it
// could not do its part) is for its parent's log only.
int run_supervisor(const SupervisorOptions& o);

// Parses jsd-job's command line: --dir DIR --keep BYTES [--cwd DIR] -- CMD...
bool parse_supervisor_args(int argc, char** argv, SupervisorOptions& o, std::string& err);

}  // namespace jsd
