#include "supervisor_watch.h"

namespace jsd {

namespace {
std::string seconds(uint64_t ms) { return std::to_string((ms + 500) / 1000) + " s"; }
std::string who(int pid) {
  return pid > 0 ? "the job supervisor (pid " + std::to_string(pid) + ")" : "the job supervisor";
}
}  // namespace

std::string SlowWatch::review(uint64_t now_ms, uint64_t oldest_ms, size_t waiting, int pid) {
  uint64_t age = waiting && now_ms > oldest_ms ? now_ms - oldest_ms : 0;
  if (!slow_ && waiting && age >= after_ms_) {
    slow_ = true;
    slow_since_ms_ = oldest_ms;
    return who(pid) + " has not answered for " + seconds(age) + ": " + std::to_string(waiting) +
           " request(s) wait (it may be stopped, or its disk stalled); jobs wait for it, nothing is lost";
  }
  if (slow_ && (!waiting || oldest_ms != slow_since_ms_)) {
    // The request that was late is answered (or settled by its death).
    slow_ = false;
    return who(pid) + " answers again, after " + seconds(now_ms > slow_since_ms_ ? now_ms - slow_since_ms_ : 0);
  }
  return "";
}

SupervisorState SlowWatch::state(uint64_t now_ms, uint64_t oldest_ms, size_t waiting, int pid) const {
  SupervisorState s;
  s.pid = pid;
  s.waiting = waiting;
  s.waiting_ms = waiting && now_ms > oldest_ms ? now_ms - oldest_ms : 0;
  s.slow = waiting && s.waiting_ms >= after_ms_;
  return s;
}

}  // namespace jsd
