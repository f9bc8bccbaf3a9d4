#include "job_record.h"

#include <climits>

#include "exit_codes.h"
#include "json_read.h"
#include "names.h"

namespace jsd {

using nlohmann::json;

int JobRecord::exit_status() const {
  if (state == "failed") return jsd_failure ? kExitJsdFailure : kExitJobNotStarted;
  if (signal > 0) return exit_for_signal(signal);
  if (exit_code >= 0) return exit_code & 0xff;
  return kExitJobLost;
}

json JobRecord::to_json() const {
  json j = {{"id", id},
            {"job", job},
            {"from", from},
            {"state", state},
            {"pid", pid},
            {"submitted", submitted},
            {"accepted", accepted},
            {"started", started},
            {"ended", ended},
            {"durable", durable},
            {"params", params},
            {"stdout_tail", stdout_tail},
            {"stderr_tail", stderr_tail}};
  if (!argv.empty()) j["argv"] = argv;
  if (input) j["stdin"] = true;
  if (!from_key.empty()) j["from_key"] = from_key;
  if (!via.empty()) j["via"] = via;
  if (deadline > 0) j["deadline"] = deadline;
  if (stdout_bytes || stderr_bytes) {
    j["stdout_bytes"] = stdout_bytes;
    j["stderr_bytes"] = stderr_bytes;
  }
  if (stdout_dropped) j["stdout_dropped"] = stdout_dropped;
  if (stderr_dropped) j["stderr_dropped"] = stderr_dropped;
  if (exit_code >= 0) j["exit_code"] = exit_code;
  if (signal > 0) j["signal"] = signal;
  if (!error.empty()) j["error"] = error;
  if (jsd_failure) j["jsd_failure"] = true;
  if (finished()) j["exit_status"] = exit_status();
  if (started > 0 && ended > 0) j["duration_s"] = ended - started;
  return j;
}

namespace {
bool known_state(const std::string& s) {
  static const char* const states[] = {"queued",    "running", "exited", "killed", "timeout",
                                       "cancelled", "failed",  "lost",   "unknown"};
  for (const char* k : states)
    if (s == k) return true;
  return false;
}
}  // namespace

bool JobRecord::from_json(const json& j, JobRecord& r, std::string& err) {
  if (!j.is_object()) {
    err = "not a JSON object";
    return false;
  }
  // Times are seconds since the epoch; a record from before 1970 or after
  // the year 5000 is not one this node wrote.
  constexpr double kLatest = 95617584000.0;
  int64_t pid = 0, exit_code = -1, sig = 0, ob = 0, eb = 0, od = 0, ed = 0;
  bool ok =
      read_string(j, "id", r.id, err, Need::kRequired) && read_string(j, "job", r.job, err, Need::kRequired) &&
      read_string(j, "from", r.from, err, Need::kRequired) && read_string(j, "from_key", r.from_key, err) &&
      read_string(j, "state", r.state, err, Need::kRequired) && read_int(j, "pid", 0, INT_MAX, pid, err) &&
      read_number(j, "submitted", 0, kLatest, r.submitted, err) &&
      read_number(j, "accepted", 0, kLatest, r.accepted, err) &&
      read_number(j, "started", 0, kLatest, r.started, err) && read_number(j, "ended", 0, kLatest, r.ended, err) &&
      read_bool(j, "durable", r.durable, err) && read_bool(j, "stdin", r.input, err) &&
      read_string_map(j, "params", r.params, err) && read_strings(j, "argv", r.argv, err) &&
      read_strings(j, "via", r.via, err) && read_int(j, "exit_code", -1, 255, exit_code, err) &&
      read_int(j, "signal", 0, 127, sig, err) && read_string(j, "error", r.error, err) &&
      read_bool(j, "jsd_failure", r.jsd_failure, err) && read_string(j, "stdout_tail", r.stdout_tail, err) &&
      read_string(j, "stderr_tail", r.stderr_tail, err) && read_number(j, "deadline", 0, kLatest, r.deadline, err) &&
      read_int(j, "stdout_bytes", 0, INT64_MAX, ob, err) && read_int(j, "stderr_bytes", 0, INT64_MAX, eb, err) &&
      read_int(j, "stdout_dropped", 0, INT64_MAX, od, err) && read_int(j, "stderr_dropped", 0, INT64_MAX, ed, err);
  if (!ok) return false;
  r.stdout_bytes = uint64_t(ob);
  r.stderr_bytes = uint64_t(eb);
  r.stdout_dropped = uint64_t(od);
  r.stderr_dropped = uint64_t(ed);
  r.pid = int(pid);
  r.exit_code = int(exit_code);
  r.signal = int(sig);
  if (!valid_name(r.id)) {
    err = "\"id\" is not a valid name";
    return false;
  }
  if (!known_state(r.state)) {
    err = "unknown state";
    return false;
  }
  return true;
}

bool parse_job_record(std::string_view text, JobRecord& r, std::string& err) {
  try {
    json j;
    if (!parse_json(text, j)) {
      err = "not JSON";
      return false;
    }
    return JobRecord::from_json(j, r, err);
  } catch (const std::exception& e) {  // out of memory: the record is refused, the node stays up
    err = e.what();
    return false;
  }
}

void append_tail(std::string& tail, std::string_view data) {
  if (data.size() >= kTailBytes) {
    tail.assign(data.substr(data.size() - kTailBytes));
    return;
  }
  tail.append(data);
  if (tail.size() > kTailBytes) tail.erase(0, tail.size() - kTailBytes);
}

std::string start_error(const std::string& what) {
  return what.rfind("cannot ", 0) == 0 ? "cannot start the job: " + what : "cannot start " + what;
}

}  // namespace jsd
