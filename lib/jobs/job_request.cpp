#include "job_request.h"

#include <cctype>
#include <cfloat>
#include <climits>

#include "jsd_limits.h"
#include "json_read.h"
#include "log.h"
#include "names.h"

namespace jsd {

using nlohmann::json;

namespace {

bool valid_param_name(const std::string& k) {
  if (k.empty() || k.size() > 64) return false;
  if (!(isalpha(static_cast<unsigned char>(k[0])) || k[0] == '_')) return false;
  for (char c : k)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

bool malformed(std::string& err, const std::string& why) {
  err = "malformed job request: " + why;
  return false;
}

// What only a submission carries: the command (a configured job or argv)
// and its parameters.
bool parse_submission(const json& j, JobRequest& req, std::string& err) {
  if (!valid_name(req.id)) {
    err = "invalid job id '" + printable(req.id, 64) + "'";
    return false;
  }
  if (auto a = j.find("argv"); a != j.end()) {
    if (!a->is_array()) {
      err = "argv must be an array";
      return false;
    }
    if (a->size() > kMaxArgs) {
      err = "argv has " + std::to_string(a->size()) + " elements (at most " + std::to_string(kMaxArgs) + ")";
      return false;
    }
    for (auto& e : *a) {
      if (!e.is_string()) {
        err = "argv must be an array of strings";
        return false;
      }
      // execve(2) would see the element cut at its first NUL, while the
      // record and the audit line show it whole.
      if (e.get_ref<const std::string&>().find('\0') != std::string::npos) {
        err = "argv must be an array of strings without NUL bytes";
        return false;
      }
      if (e.get_ref<const std::string&>().size() > kMaxArgBytes) {
        err = "an argv element of " + std::to_string(e.get_ref<const std::string&>().size()) + " bytes (at most " +
              std::to_string(kMaxArgBytes) + ")";
        return false;
      }
      req.argv.push_back(e.get<std::string>());
    }
    req.adhoc = true;
    req.job.clear();
  }
  if (auto p = j.find("params"); p != j.end()) {
    if (!p->is_object()) {
      err = "params must be an object";
      return false;
    }
    if (p->size() > kMaxParams) {
      err = std::to_string(p->size()) + " parameters (at most " + std::to_string(kMaxParams) + ")";
      return false;
    }
    for (auto& [k, v] : p->items()) {
      if (!valid_param_name(k)) {
        err = "invalid parameter name '" + printable(k, 64) + "' (letters, digits, _; not starting with a digit)";
        return false;
      }
      if (v.is_string() && v.get_ref<const std::string&>().size() > kMaxArgBytes) {
        err = "parameter " + k + " has " + std::to_string(v.get_ref<const std::string&>().size()) + " bytes (at most " +
              std::to_string(kMaxArgBytes) + ")";
        return false;
      }
      if (!v.is_string() || v.get_ref<const std::string&>().find('\0') != std::string::npos) {
        err = "parameter " + k + " must be a string without NUL bytes";
        return false;
      }
      req.params[k] = v.get<std::string>();
    }
  }
  return true;
}

bool parse(std::string_view body, JobRequest& req, std::string& err) {
  json j;
  std::string op;
  if (!parse_json(body, j) || !j.is_object() || !read_string(j, "op", op, err, Need::kRequired)) {
    err = "malformed job request";
    return false;
  }
  // Every member is checked by type before any is used.
  std::string why;
  if (!read_string(j, "id", req.id, why) || !read_string(j, "job", req.job, why) ||
      !read_bool(j, "durable", req.durable, why) || !read_bool(j, "stream", req.stream, why) ||
      !read_bool(j, "stdin", req.input, why))
    return malformed(err, why);
  // Names and ids are short (names.h): a longer one names nothing, and is
  // refused before it reaches a log line, an audit line or a record.
  if (!req.job.empty() && !valid_name(req.job))
    return malformed(err, "invalid job name '" + printable(req.job, 64) + "'");
  if (!req.id.empty() && !valid_name(req.id)) {
    err = "invalid job id '" + printable(req.id, 64) + "'";
    return false;
  }
  int64_t out = 0, errs = 0;
  if (!read_int(j, "stdout_from", 0, INT64_MAX, out, why) || !read_int(j, "stderr_from", 0, INT64_MAX, errs, why) ||
      !read_bool(j, "resume", req.resume, why))
    return malformed(err, why);
  req.stdout_from = uint64_t(out);
  req.stderr_from = uint64_t(errs);
  if (j.contains("expires")) {
    if (!read_number(j, "expires", -DBL_MAX, DBL_MAX, req.expires, why))
      return malformed(err, "\"expires\" must be a number");
    req.has_expires = true;
  }
  // Seconds since the epoch, 1970 to the year 5000 (as in records).
  if (j.contains("submitted") && !read_number(j, "submitted", 0, 95617584000.0, req.submitted, why))
    return malformed(err, "\"submitted\" must be a time in seconds since the epoch");
  if (op == "submit") {
    req.op = JobRequest::Op::kSubmit;
    return parse_submission(j, req, err);
  }
  if (op == "status") {
    req.op = JobRequest::Op::kStatus;
    return true;
  }
  if (op == "cancel") {
    req.op = JobRequest::Op::kCancel;
    return true;
  }
  if (op == "history") {
    req.op = JobRequest::Op::kHistory;
    if (!read_int(j, "n", 1, kMaxHistory, req.limit, why))
      return malformed(err, "\"n\" must be a number of records from 1 to " + std::to_string(kMaxHistory));
    return true;
  }
  if (op == "jobs") {
    req.op = JobRequest::Op::kJobs;
    return true;
  }
  if (op == "attach") {
    req.op = JobRequest::Op::kAttach;
    return true;
  }
  err = "unknown job operation '" + op + "'";
  return false;
}

}  // namespace

bool parse_job_request(std::string_view body, JobRequest& req, std::string& err) noexcept {
  try {
    req = JobRequest{};
    return parse(body, req, err);
  } catch (...) {  // out of memory: an error reply, not an abort
    try {
      err = "malformed job request";
    } catch (...) {
    }
    return false;
  }
}

}  // namespace jsd
