// The listener's view of one job of the node's job supervisor (job_spawn.h):
// private to job_spawn.cpp and job_supervisor_conn.cpp.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "job_files.h"
#include "job_spawn.h"

namespace jsd {

// One job as the supervisor reports it; shared with its JobProcess and
// kept by id in the PosixJobProcesses while the job runs.
struct PosixJobProcesses::Sup {
  PosixJobProcesses* owner = nullptr;  // null once it is gone
  std::string id, dir;
  std::string start_msg;  // while its start is not answered: the R message, to send again
  uint64_t sent_ms = 0;   // when that was sent (SlowWatch)
  JobEvents ev;
  int pid = 0;
  uint64_t first[2] = {0, 0};
  uint64_t seen[2] = {0, 0};  // stream offsets reported so far
  int hold[2] = {-1, -1};     // our read ends of its FIFOs (job_files.h)
  bool starting = false, gone = false, ended = false, out_open = true, err_open = true;
  bool ours = false;                     // its reaper is this listener (it is our child now, or will be)
  bool orphan = false;                   // its supervisor died; the next one adopts it
  int reaped_code = -2, reaped_sig = 0;  // how it ended, as we reaped it (-2: not yet)
  std::vector<std::string> early;        // its events read before the answer to its start

  ~Sup() { release(); }
  void release() {
    for (int& fd : hold)
      if (fd >= 0) ::close(fd), fd = -1;
  }
  // Hold a read end of each FIFO: bytes a job wrote before it ended stay
  // in the pipe for the next supervisor even when this one dies.
  void hold_fifos() {
    for (int k : {0, 1})
      if (hold[k] < 0) hold[k] = open(job_fifo(dir, k + 1).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  }
  void close_streams() {
    for (int fd : {1, 2}) {
      bool& open = fd == 1 ? out_open : err_open;
      if (!open || gone) continue;
      open = false;
      auto f = ev.output_closed;
      if (f) f(fd);
    }
  }
  // The end, once: from the E message, job.json's end line, or nothing (unknown).
  void deliver(const JobEnd& e) {
    if (ended || gone) return;
    ended = true;
    starting = false;
    release();
    if (owner) owner->forget(id, this);
    if (ev.end && e.known) ev.end(e);
    if (gone) return;
    close_streams();
    if (gone) return;
    auto f = ev.exited;
    if (!f) return;
    if (!e.known || !e.error.empty() || (e.exit_code < 0 && !e.signal))
      f(-1, 0);
    else
      f(e.signal ? 0 : e.exit_code, e.signal);
  }
  void output(int fd, std::string_view bytes) {
    seen[fd == 2 ? 1 : 0] += bytes.size();
    if (gone || ended || !ev.output) return;
    auto f = ev.output;
    f(fd, bytes);
  }
  // The output its dead supervisor kept on disk but did not report.
  void catch_up() {
    for (int fd : {1, 2}) {
      uint64_t& at = seen[fd - 1];
      KeptOutput k = read_kept_output(dir, fd, at);
      if (k.end <= at) continue;
      if (k.first > at) at = k.first;  // dropped meanwhile
      if (!k.data.empty()) output(fd, k.data);
      at = k.end;
    }
  }
  void started(int p) {
    pid = p;
    starting = false;
    start_msg.clear();
    auto f = ev.started;
    if (f && !gone) f(p);
    // After the start is told (its two opens are not on the submitter's
    // path): the job holds its FIFOs itself while it runs; ours matter
    // once it has ended and its supervisor died before reading all.
    if (!ended) hold_fifos();
  }
  void start_failed(const StartError& err) {
    if (ended || gone) return;
    ended = true;
    starting = false;
    if (owner) owner->forget(id, this);
    auto f = ev.start_failed;
    if (f) f(err);
  }
};

}  // namespace jsd
