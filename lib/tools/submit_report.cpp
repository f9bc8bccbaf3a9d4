#include "submit_report.h"

#include <cstdio>
#include <iostream>

#include "exit_codes.h"
#include "json_read.h"
#include "uvx.h"

namespace jsd {

using nlohmann::json;

namespace {

std::string fmt_time(double t) { return t > 0 ? iso_time(t) : "-"; }

// Members read for printing only: a member of another type prints as absent.
std::string str_of(const json& r, const char* key, const std::string& dflt = "") {
  std::string s = dflt, err;
  return read_string(r, key, s, err) ? s : dflt;
}

double num_of(const json& r, const char* key) {
  double d = 0;
  std::string err;
  return read_number(r, key, -1e18, 1e18, d, err) ? d : 0;
}

// The exit status of a finished record and whose it is: ", exit status
// 3", ", exit status 254 (jsd's: the outcome cannot be known)".
std::string status_text(const json& r) {
  JobEnd e;
  std::string err;
  if (!read_job_end(r, e, err) || !job_state_finished(e.state)) return "";
  std::string s = ", exit status " + std::to_string(e.exit_status());
  if (e.exit_from() == ExitFrom::jsd)
    s += e.exit_status() == kExitOutcomeUnknown ? " (jsd's: the outcome cannot be known)"
                                                : " (jsd's: the job did not run)";
  return s;
}

}  // namespace

void print_record_text(const json& r, const std::string& node, const std::string& type) {
  std::string state = str_of(r, "state", "?");
  printf("job %s (%s) on %s: %s%s", str_of(r, "id").c_str(), str_of(r, "job").c_str(), node.c_str(), state.c_str(),
         status_text(r).c_str());
  printf("\n  submitted %s by %s", fmt_time(num_of(r, "submitted")).c_str(), str_of(r, "from").c_str());
  // A --no-wait submission that waited for its link: when it arrived too.
  if (double acc = num_of(r, "accepted"); acc - num_of(r, "submitted") >= 1)
    printf(", accepted %s", fmt_time(acc).c_str());
  printf(", started %s, ended %s\n", fmt_time(num_of(r, "started")).c_str(), fmt_time(num_of(r, "ended")).c_str());
  if (r.contains("error")) printf("  error: %s\n", str_of(r, "error", r["error"].dump()).c_str());
  if (type == "cancel")
    printf("  %s\n", state == "running"     ? "cancelling: SIGTERM sent to its process group"
                     : state == "cancelled" ? "cancelled"
                                            : "not running: nothing to cancel");
}

std::string unknowable_why(const JobEnd& e, const json& r, const std::string& id) {
  if (e.state == JobState::lost) return "job " + id + " was lost: " + str_of(r, "error", "its node lost track of it");
  return "the outcome of job " + id + " cannot be known: " + str_of(r, "error", "its node cannot tell");
}

void print_end_notes(const json& r, const std::string& node, const std::string& id, bool quiet, bool interrupted) {
  std::string state = str_of(r, "state"), err;
  int64_t sig = 0;
  JobEnd e;
  bool known = read_job_end(r, e, err);
  if (known && job_state_unknowable(e.state))
    fprintf(stderr, "jsd-submit: error: %s: %s\n", node.c_str(), unknowable_why(e, r, id).c_str());
  else if (state == "failed")
    fprintf(stderr, "jsd-submit: %s: %s\n", node.c_str(), str_of(r, "error", "the job could not start").c_str());
  else if (quiet)
    return;
  else if (known && e.exit_from() == ExitFrom::job && e.exit_status() >= kExitOutcomeUnknown)
    fprintf(stderr, "jsd-submit: %s: job %s exited with %d: its own status, not jsd's\n", node.c_str(), id.c_str(),
            e.exit_status());
  else if (state == "timeout")
    fprintf(stderr, "jsd-submit: %s: job %s ended by its timeout_s\n", node.c_str(), id.c_str());
  else if (r.contains("signal") && !interrupted && read_int(r, "signal", 0, 255, sig, err))
    fprintf(stderr, "jsd-submit: %s: job %s killed by signal %d\n", node.c_str(), id.c_str(), int(sig));
}

json end_json(const json& r, const std::string& id, const std::string& node, const std::string& job, double submitted,
              bool duplicate) {
  JobEnd e;
  std::string err;
  read_job_end(r, e, err);  // a record that is none: unknown, 254 from jsd
  json out = {{"id", id},
              {"node", node},
              {"job", str_of(r, "job", job)},
              {"state", str_of(r, "state", "?")},
              {"exit_status", e.exit_status()},
              {"exit_from", exit_from_name(e.exit_from())},
              {"submitted", r.contains("submitted") ? num_of(r, "submitted") : submitted},
              {"accepted", num_of(r, "accepted")},
              {"started", num_of(r, "started")},
              {"ended", num_of(r, "ended")},
              {"duration_s", num_of(r, "duration_s")},
              {"wall_s", wall_time() - submitted},
              {"duplicate", duplicate}};
  for (const char* k : {"exit_code", "signal", "error"})
    if (r.contains(k)) out[k] = r[k];
  return out;
}

int print_query_answer(const json& r, const std::string& node, const std::string& type, bool as_json) {
  if (as_json) {
    // A record, with the status jsd-submit gives it and whose it is.
    json j = r;
    JobEnd e;
    std::string err;
    if (type != "refused" && read_job_end(r, e, err) && job_state_finished(e.state)) {
      j["exit_status"] = e.exit_status();
      j["exit_from"] = exit_from_name(e.exit_from());
    }
    std::cout << dump_json(j) << std::endl;
  } else if (type == "refused")
    print_refusal_text(r, node);
  else
    print_record_text(r, node, type);
  return type == "refused" ? kExitJsdFailure : kExitOk;
}

json queued_json(const std::string& id, const std::string& node, const std::string& job, double submitted) {
  return {{"id", id}, {"node", node}, {"job", job}, {"state", "queued"}, {"submitted", submitted}};
}

json unknown_json(const std::string& id, const std::string& node, const std::string& job, double submitted) {
  return {{"id", id}, {"node", node}, {"job", job}, {"state", "unknown"}, {"submitted", submitted}};
}

int print_listing(const json& answer, const std::string& node, const std::string& type, bool as_json) {
  const char* key = type == "history" ? "records" : "jobs";
  auto it = answer.find(key);
  if (it == answer.end() || !it->is_array()) {
    fprintf(stderr, "jsd-submit: error: malformed %s answer from %s\n", type.c_str(), node.c_str());
    return kExitJsdFailure;
  }
  if (as_json) {
    for (auto& x : *it) {
      if (!x.is_object()) continue;
      json o = x;
      o["node"] = node;
      std::cout << dump_json(o) << "\n";
    }
    std::cout << std::flush;
    return kExitOk;
  }
  if (type == "history") {
    printf("%-20s %-16s %-10s %4s  %-20s %-20s %-20s %9s\n", "ID", "JOB", "STATE", "EXIT", "SUBMITTED", "STARTED",
           "ENDED", "DURATION");
    for (auto& r : *it) {
      if (!r.is_object()) continue;
      std::string exit = "-", err;
      JobEnd e;
      if (read_job_end(r, e, err) && job_state_finished(e.state)) exit = std::to_string(e.exit_status());
      char dur[32] = "-";
      if (r.contains("duration_s")) snprintf(dur, sizeof dur, "%.3fs", num_of(r, "duration_s"));
      printf("%-20s %-16s %-10s %4s  %-20s %-20s %-20s %9s\n", str_of(r, "id").c_str(), str_of(r, "job").c_str(),
             str_of(r, "state", "?").c_str(), exit.c_str(), fmt_time(num_of(r, "submitted")).c_str(),
             fmt_time(num_of(r, "started")).c_str(), fmt_time(num_of(r, "ended")).c_str(), dur);
    }
    return kExitOk;
  }
  printf("%-20s %9s %12s  %s\n", "JOB", "TIMEOUT", "MAX_PARALLEL", "DESCRIPTION");
  for (auto& d : *it) {
    if (!d.is_object()) continue;
    double t = num_of(d, "timeout_s");
    char timeout[32] = "-";
    if (t > 0) snprintf(timeout, sizeof timeout, "%gs", t);
    printf("%-20s %9s %12lld  %s\n", str_of(d, "name").c_str(), timeout,
           static_cast<long long>(num_of(d, "max_parallel")), str_of(d, "description", "-").c_str());
  }
  if (JsonFields(answer).boolean("adhoc", false))
    printf("(ad-hoc commands allowed: jsd-submit %s -- CMD)\n", node.c_str());
  return kExitOk;
}

void print_refusal_text(const json& r, const std::string& node) {
  printf("job %s (%s) to %s: refused, never run\n  refused %s\n  error: %s\n", str_of(r, "id").c_str(),
         str_of(r, "job", "?").c_str(), node.c_str(), fmt_time(num_of(r, "refused")).c_str(),
         str_of(r, "error", "refused").c_str());
}

}  // namespace jsd
