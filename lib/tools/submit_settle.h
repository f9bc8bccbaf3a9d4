// jsd-submit giving up on a submission whose job has not started (a refused
// link, its --timeout, a signal, a lost listener): before it exits it makes
// sure the job cannot run behind its back, or learns that it cannot know.
//  - The request still waits on this node: it is withdrawn. The listener
//    answers not_sent only when no link has carried it, and then it never
//    will.
//  - The node has it queued (it answered "queued"): the cancel is answered
//    with the record, which says whether the job was cancelled unstarted.
// Anything else, or no answer within kSettleMs, is unknown.
#pragma once

#include <cstdint>
#include <functional>

#include "control_msg.h"
#include "uvx.h"

namespace jsd {

class Settle {
 public:
  enum class Outcome { not_run, unknown };
  using Done = std::function<void(Outcome)>;
  static constexpr uint64_t kSettleMs = 2000;

  explicit Settle(uv_loop_t* loop) : timer_(loop) {}
  bool active() const { return bool(done_); }
  // Asks the listener (through send, false if it is gone) to take call
  // call_id back.
  void withdraw(uint64_t call_id, const std::function<bool(const ControlMsg&)>& send, Done done);
  // Waits for the end of job call call_id or for the answer to its cancel,
  // call cancel_id, already sent.
  void await_cancel(uint64_t call_id, uint64_t cancel_id, Done done);
  // A message from the listener: true if it settled the matter (done ran).
  bool on_msg(const ControlMsg& m);
  // The listener is gone, or the submitter ends for another reason.
  void lost() { finish(Outcome::unknown); }
  void stop();

 private:
  void finish(Outcome o);
  Timer timer_;
  Done done_;
  uint64_t call_id_ = 0, cancel_id_ = 0;
  bool cancelling_ = false;
};

}  // namespace jsd
