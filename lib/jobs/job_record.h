// A job record: what a node keeps about one job (state, exit status, the end
// of its output), so `status` answers after the submitter is gone and after
// the node restarts. See job_store.h for where records live.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace jsd {

struct JobRecord {
  std::string id, job, from;
  // The fingerprint of the key its submitter linked with (empty: this node
  // itself, or a record from before it was kept): what is checked against
  // `revoked` when a queued job starts after a restart, before the
  // submitter links again.
  std::string from_key;
  // The gateways its submission came through (a relayed request), in order.
  std::vector<std::string> via;
  std::string state = "queued";   // queued running exited killed timeout cancelled failed unknown (lost: older records)
  std::vector<std::string> argv;  // ad-hoc commands only
  std::map<std::string, std::string> params;
  bool durable = false;
  bool input = false;  // submitted with standard input (jsd-submit -i)
  int pid = 0;
  // submitted: when its submitter submitted it (by that node's clock, and
  // never after accepted); accepted: when this node took it in (a --no-wait
  // submission waits in its sender's outbox while the link is down).
  double submitted = 0, accepted = 0, started = 0, ended = 0;
  double deadline = 0;  // timeout_s after started (0: none), kept across restarts
  int exit_code = -1;   // when the job exited
  int signal = 0;       // when a signal ended it
  std::string error;    // why it failed to start
  // It failed because jsd could not start it (no descriptors, no processes,
  // its definition gone), not because its command could not be executed.
  bool jsd_failure = false;
  std::string stdout_tail, stderr_tail;
  // Bytes the job wrote to each stream, and the oldest of them no longer
  // kept (job_output_keep) in its directory (job_files.h).
  uint64_t stdout_bytes = 0, stderr_bytes = 0, stdout_dropped = 0, stderr_dropped = 0;

  bool finished() const { return state != "queued" && state != "running"; }
  // The status a submitter exits with: the code, 128+signal, 127 if its
  // command could not be executed, 255 if jsd could not start it or the
  // outcome is unknown.
  int exit_status() const;
  nlohmann::json to_json() const;
  // Never throws: false, with err, for a record that is not one of ours
  // (a member of the wrong type, a number out of range, an unknown state).
  static bool from_json(const nlohmann::json& j, JobRecord& r, std::string& err);
};

// A record file's text; false, with err, when it is not a valid record.
bool parse_job_record(std::string_view text, JobRecord& r, std::string& err);

// The error of a job that did not start: "cannot start /bin/x: No such
// file" names what could not be started; a reason that is itself a
// sentence ("cannot write ...") is said of the job.
std::string start_error(const std::string& what);

constexpr size_t kTailBytes = 16 * 1024;
void append_tail(std::string& tail, std::string_view data);

}  // namespace jsd
