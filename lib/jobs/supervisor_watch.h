// Whether the node's job supervisor is slow. A supervisor is gone when its
// process is gone (job_spawn.h); a slow one (stopped, swapped out, its disk
// stalled) is only late: its jobs wait, and the operator is told — one log
// line when it turns slow, one when it answers again, and --status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace jsd {

// What --status and the metrics say of the supervisor.
struct SupervisorState {
  int pid = 0;              // 0: none runs (or not known yet)
  size_t waiting = 0;       // requests it has not answered: starts, its list of jobs
  uint64_t waiting_ms = 0;  // since the oldest of them was sent
  bool slow = false;        // waiting_ms reached the threshold (job_supervisor_slow_s)
};

class SlowWatch {
 public:
  explicit SlowWatch(uint64_t slow_after_ms) : after_ms_(slow_after_ms) {}
  // What waits now: how many requests are unanswered and when the oldest
  // was sent (waiting 0: nothing waits). Returns the line to log when the
  // supervisor turns slow or answers again, else "".
  std::string review(uint64_t now_ms, uint64_t oldest_ms, size_t waiting, int pid);
  bool slow() const { return slow_; }
  uint64_t after_ms() const { return after_ms_; }
  SupervisorState state(uint64_t now_ms, uint64_t oldest_ms, size_t waiting, int pid) const;

 private:
  uint64_t after_ms_;
  bool slow_ = false;
  uint64_t slow_since_ms_ = 0;  // when the oldest request was sent, as it turned slow
};

}  // namespace jsd
