#include "job_wire.h"

#include "exit_codes.h"
#include "json_read.h"

namespace jsd {

namespace {
constexpr const char* kStateNames[] = {"queued",    "running", "exited", "killed", "timeout",
                                       "cancelled", "failed",  "lost",   "unknown"};
}  // namespace

const char* job_state_name(JobState s) { return kStateNames[static_cast<int>(s)]; }

bool parse_job_state(std::string_view name, JobState& s) {
  for (size_t i = 0; i < std::size(kStateNames); ++i)
    if (name == kStateNames[i]) {
      s = static_cast<JobState>(i);
      return true;
    }
  return false;
}

const char* exit_from_name(ExitFrom f) { return f == ExitFrom::job ? "job" : "jsd"; }

ExitFrom JobEnd::exit_from() const {
  if (job_state_unknowable(state) || !job_state_finished(state)) return ExitFrom::jsd;
  if (state == JobState::failed) return jsd_failure ? ExitFrom::jsd : ExitFrom::job;
  return signal > 0 || exit_code >= 0 ? ExitFrom::job : ExitFrom::jsd;
}

int JobEnd::exit_status() const {
  if (job_state_unknowable(state) || !job_state_finished(state)) return kExitOutcomeUnknown;
  if (state == JobState::failed) return jsd_failure ? kExitJsdFailure : kExitJobNotStarted;
  if (signal > 0) return exit_for_signal(signal);
  if (exit_code >= 0) return exit_code & 0xff;
  // Cancelled while it waited: it never ran, and never will.
  if (state == JobState::cancelled && started == 0) return kExitJsdFailure;
  return kExitOutcomeUnknown;  // an end that does not say how
}

bool read_job_end(const nlohmann::json& record, JobEnd& e, std::string& err) {
  if (!record.is_object()) {
    err = "a record is not a JSON object";
    return false;
  }
  std::string state;
  int64_t code = -1, sig = 0;
  if (!read_string(record, "state", state, err, Need::kRequired) ||
      !read_int(record, "exit_code", -1, 255, code, err) || !read_int(record, "signal", 0, 127, sig, err) ||
      !read_number(record, "started", 0, 1e12, e.started, err) || !read_bool(record, "jsd_failure", e.jsd_failure, err))
    return false;
  if (!parse_job_state(state, e.state)) {
    err = "unknown state '" + state + "'";
    return false;
  }
  e.exit_code = int(code);
  e.signal = int(sig);
  return true;
}

}  // namespace jsd
