// A job's end as it travels between a node and the tools: the states a job
// record names, and the status jsd-submit exits with for a record, with
// whose status it is. One reading for the node (lib/jobs) and the tools
// (lib/tools), so that "lost" means the same thing on both sides.
//
// The verdict rule (jsd-submit(1), EXIT STATUS): a status is either the
// job's own (its exit code, 128+N for signal N, 127 when its command could
// not be executed) or jsd's, and jsd's are two:
//   255  the job did not run and will not run;
//   254  jsd cannot know whether it ran (a record "lost" or "unknown").
// A job may itself exit with 254 or 255: exit_from says which it was.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace jsd {

enum class JobState { queued, running, exited, killed, timeout, cancelled, failed, lost, unknown };

// Its name in a record ("queued", "running", ...), and back: false for a
// name that is none of them.
const char* job_state_name(JobState s);
bool parse_job_state(std::string_view name, JobState& s);
// Neither queued nor running: the record will not change again.
constexpr bool job_state_finished(JobState s) { return s != JobState::queued && s != JobState::running; }
// lost (its node lost track of it) or unknown (its node cannot know its
// fate): it may have run, or still run.
constexpr bool job_state_unknowable(JobState s) { return s == JobState::lost || s == JobState::unknown; }

enum class ExitFrom { job, jsd };
const char* exit_from_name(ExitFrom f);  // "job", "jsd"

// What decides a record's exit status.
struct JobEnd {
  JobState state = JobState::unknown;
  int exit_code = -1;        // when the job exited
  int signal = 0;            // when a signal ended it
  double started = 0;        // 0: it never started
  bool jsd_failure = false;  // failed: jsd could not start it (not its command)

  int exit_status() const;
  ExitFrom exit_from() const;
};

// The end of a record as a node sends it (JSON); never throws. False, with
// err, for one that is not a record: "state" missing or not a state, a
// member of the wrong type or out of range.
bool read_job_end(const nlohmann::json& record, JobEnd& e, std::string& err);

}  // namespace jsd
