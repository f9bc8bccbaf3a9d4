// One node of a fan-out (fanout.h): what the Fanout keeps of its run, and
// the summary a set ends with, made from those runs (fanout_status.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "exit_codes.h"
#include "fanout.h"
#include "job_wire.h"
#include "submit_settle.h"
#include "uvx.h"

namespace jsd {

// One target's run. Its calls on the control connection have ids from
// its index: the job call, its cancel, the watchdog's status call.
struct NodeRun {
  enum class Phase { waiting, running, done };
  std::string node, id, target_error;
  size_t index = 0;
  Phase phase = Phase::waiting;
  bool queued = false, cancel_sent = false, heard = false, not_started = false;
  double submitted = 0, started = 0;
  uint64_t last_rx_ms = 0;
  std::string last_note;
  std::unique_ptr<Timer> timeout;
  std::unique_ptr<Settle> settle;
  FailKind give_up_kind = FailKind::none;
  std::string give_up_why;
  // The result.
  int code = kExitJsdFailure;
  ExitFrom from = ExitFrom::jsd;  // whose code is
  FailKind kind = FailKind::none;
  std::string why;  // the jsd error, or the state of a job that failed

  uint64_t call_id() const { return uint64_t(index) * 4 + 1; }
  uint64_t cancel_id() const { return call_id() + 1; }
  uint64_t watch_id() const { return call_id() + 2; }
};

// The end of a set: unless quiet, its summary on err ("N nodes: N ok, N
// failed[, N unknown][, N not started]", then a line for each node that did
// not end with 0); returns the set's exit status from the nodes that ended
// (fanout_exit_status).
int fanout_summary(const std::vector<std::unique_ptr<NodeRun>>& runs, bool quiet, FILE* err);

}  // namespace jsd
