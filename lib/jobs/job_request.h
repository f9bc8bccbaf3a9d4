// A call to a node's `job` object, decoded: {"op":"submit"|"status"|"cancel",
// ...}. Requests come from peers over links and from local tools, and a
// durable one is re-delivered after every restart of its sender: decoding
// never throws, so one bad request gets an error, never takes a node down.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace jsd {

struct JobRequest {
  // kHistory: the caller's last `limit` records; kJobs: the jobs it may run.
  enum class Op { kSubmit, kStatus, kCancel, kAttach, kHistory, kJobs };
  Op op = Op::kSubmit;
  std::string id;   // "" when absent
  std::string job;  // the configured job's name ("" when absent or ad hoc)
  bool adhoc = false;
  std::vector<std::string> argv;  // an ad-hoc command (adhoc)
  std::map<std::string, std::string> params;
  bool durable = false;
  bool input = false;  // "stdin": the submitter streams its standard input (jsd-submit -i)
  bool stream = true;  // reply with the output and the end, not only "accepted"
  bool has_expires = false;
  double expires = 0;  // seconds since the epoch: the submitter gives up then
  // When the submitter submitted it, by its clock (a --no-wait submission
  // may reach the node much later); 0 when the request does not say.
  double submitted = 0;
  // attach: the stream offsets from which the attacher wants the output
  // (what it printed so far), so that it prints nothing twice.
  uint64_t stdout_from = 0, stderr_from = 0;
  // A submission sent again by its waiting submitter (its listener
  // restarted, its link broke): when the id is known, it attaches from
  // stdout_from/stderr_from, whatever the job's state.
  bool resume = false;
  int64_t limit = 20;  // kHistory: at most this many records (1..kMaxHistory)
};

constexpr int64_t kMaxHistory = 1000;

// False, with the error to send back, for a request that is not one: not a
// JSON object, a member of the wrong type, an unknown op; for a submission
// also an invalid id, argv or params. Never throws.
bool parse_job_request(std::string_view body, JobRequest& req, std::string& err) noexcept;

}  // namespace jsd
