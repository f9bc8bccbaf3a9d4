// How a one-node jsd-submit ends (submitter.h): giving up, settled first so
// that 255 promises the job did not run (submit_settle.h); a record and the
// exit status it gives; --no-wait's queued answer; the watchdog that asks
// for an end confirmation a stopped node lost.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "exit_codes.h"
#include "job_wire.h"
#include "json_read.h"
#include "submit_report.h"
#include "submitter.h"

namespace jsd {

using nlohmann::json;

void Submitter::send_cancel() {
  if (cancel_sent_) return;
  cancel_sent_ = true;
  send_call(kCancelId, {{"op", "cancel"}, {"id", id_}}, false);
}

// A job submission of ours that may still be queued, or run, somewhere.
bool Submitter::ours_in_flight() const {
  return o_.mode == SubmitOptions::Mode::submit && !o_.no_wait && submitted_ > 0 && !not_ours_;
}

// We stop waiting for why. Exit code (255, or 128+N after signal N) only
// if the job certainly did not run and will not; so a request that may
// still be queued is first taken back (see submit_settle.h).
void Submitter::give_up(const std::string& why, int code) {
  if (done_ || settle_.active()) return;
  if (o_.mode == SubmitOptions::Mode::submit && o_.no_wait && submitted_ > 0 && code == kExitJsdFailure)
    return stored_ ? still_queued(why) : stored_unknown(why);
  if (!ours_in_flight()) return code == kExitJsdFailure ? (void)fail(why) : exit_with(code);
  why_ = why;
  give_up_code_ = code;
  timer_.stop();
  watchdog_.stop();
  auto settled = [this](Settle::Outcome o) { o == Settle::Outcome::not_run ? not_run() : outcome_unknown(); };
  if (started_ > 0) return outcome_unknown();
  if (queued_) {  // on the node already: only its cancel can stop it
    send_cancel();
    return settle_.await_cancel(kCallId, kCancelId, settled);
  }
  settle_.withdraw(
      kCallId, [this](const ControlMsg& m) { return send_msg(m); }, settled);
}

// --no-wait, and we heard no answer: the listener may have written the
// submission to its outbox before it went (it then delivers it after its
// restart), or not. 255 would promise that it never runs.
void Submitter::stored_unknown(const std::string& why) {
  fprintf(stderr,
          "jsd-submit: error: %s; job %s may have been queued on this node and may run: jsd-submit --status %s %s\n",
          why.c_str(), id_.c_str(), id_.c_str(), o_.node.c_str());
  if (o_.json) std::cout << dump_json(unknown_json(id_, o_.node, job_name(), submitted_)) << std::endl;
  exit_with(kExitOutcomeUnknown);
}

// --no-wait, on this node's disk already ("queued_locally"): it stays
// queued whatever happens to this wait.
void Submitter::still_queued(const std::string& why) {
  if (!o_.quiet)
    fprintf(stderr, "jsd-submit: %s; job %s stays queued on this node (jsd-submit --status %s %s)\n", why.c_str(),
            id_.c_str(), id_.c_str(), o_.node.c_str());
  queued("queued");
}

void Submitter::not_run() {
  const char* how = not_run_how(queued_);
  if (give_up_code_ == kExitJsdFailure)
    fprintf(stderr, "jsd-submit: error: %s; %s\n", why_.c_str(), how);
  else
    fprintf(stderr, "jsd-submit: %s; %s\n", why_.c_str(), how);
  exit_with(give_up_code_);
}

// The request may have reached the node: say so, and how to find out.
void Submitter::outcome_unknown() {
  bool started = started_ > 0;
  if (started && !o_.detach_on_interrupt) send_cancel();
  fprintf(stderr, "jsd-submit: %s%s; %s: jsd-submit --status %s %s\n",
          give_up_code_ == kExitJsdFailure ? "error: " : "", why_.c_str(),
          started ? ("job " + id_ + " had started on " + o_.node + (cancel_sent_ ? ", a cancel was sent" : "")).c_str()
                  : ("job " + id_ + " may have reached " + o_.node + " and may run").c_str(),
          id_.c_str(), o_.node.c_str());
  if (o_.json) std::cout << dump_json(unknown_json(id_, o_.node, job_name(), submitted_)) << std::endl;
  exit_with(give_up_code_ == kExitJsdFailure ? kExitOutcomeUnknown : give_up_code_);
}

void Submitter::start_watchdog() {
  // The end confirmation waits in the node's memory; if that node
  // stops, it is gone. After a quiet spell, ask for the job's record.
  watchdog_.start(
      kWatchMs,
      [this] {
        if (now_ms() - last_rx_ms_ >= kWatchMs && !done_) send_call(kWatchId, {{"op", "status"}, {"id", id_}}, false);
      },
      kWatchMs);
}

// The answer to a watchdog status call.
void Submitter::on_watchdog(const std::string& body) {
  json j;
  parse_json(body, j);
  if (!j.is_object() || !j.contains("record")) return;  // no answer yet is fine: the link may be down
  const json& r = j["record"];
  JobEnd e;
  std::string err;
  if (!read_job_end(r, e, err)) return;                 // not a record: the next quiet spell asks again
  if (e.state == JobState::running) return reattach();  // it runs, and we heard nothing: our stream may be gone
  if (e.state == JobState::queued) return;
  if (!o_.quiet)
    fprintf(stderr, "jsd-submit: %s: the end confirmation of job %s was lost; this is the node's record\n",
            o_.node.c_str(), id_.c_str());
  on_record("ended", r);
}

// --no-wait with the link up: the node's answer is a moment away, so wait
// for it (a refusal exits 255 in on_control), but not for long: the
// submission is safe on this node's disk already.
void Submitter::await_acceptance() {
  timer_.stop();  // --timeout no longer applies: nothing can be lost now
  double bound_s = o_.timeout_s > 0 ? std::min(o_.timeout_s, kAcceptWaitS) : kAcceptWaitS;
  accept_wait_.start(uint64_t(bound_s * 1000), [this] {
    if (!o_.quiet)
      fprintf(stderr,
              "jsd-submit: %s has not answered yet; job %s stays queued on this node (jsd-submit --status %s %s)\n",
              o_.node.c_str(), id_.c_str(), id_.c_str(), o_.node.c_str());
    queued("queued");
  });
}

// --no-wait is done: the id (or the JSON object) on stdout, exit 0.
void Submitter::queued(const std::string& state) {
  accept_wait_.stop();
  if (o_.json) {
    json q = queued_json(id_, o_.node, job_name(), submitted_);
    q["state"] = state;
    std::cout << dump_json(q) << std::endl;
  } else {
    std::cout << id_ << std::endl;
  }
  exit_with(kExitOk);
}

// A record of our job: we exit with its status (job_wire.h: the job's
// own, 255 if it did not run and will not, 254 if that cannot be known).
void Submitter::on_record(const std::string& type, const json& r) {
  if (type == "refused" || type == "status" || type == "cancel")
    return exit_with(print_query_answer(r, o_.node, type, o_.json));
  JobEnd e;
  std::string err;
  if (!read_job_end(r, e, err)) return give_up("malformed record from " + o_.node + ": " + err, kExitJsdFailure);
  if (type == "duplicate") not_ours_ = true;  // an earlier submission's job: never cancel it
  if (type == "duplicate" && !job_state_finished(e.state))
    return (void)fail("job id " + id_ + " is already " + job_state_name(e.state) + " on " + o_.node +
                      " (jsd-submit --status " + id_ + " " + o_.node + ")");
  if (type == "duplicate" && !o_.quiet)
    fprintf(stderr, "jsd-submit: %s: job id %s already ran there; not run again\n", o_.node.c_str(), id_.c_str());
  print_end_notes(r, o_.node, id_, o_.quiet, interrupted_ != 0);
  if (o_.json)
    std::cout << dump_json(end_json(r, id_, o_.node, job_name(), submitted_, type == "duplicate")) << std::endl;
  exit_with(interrupted_ ? exit_for_signal(interrupted_) : e.exit_status());
}

}  // namespace jsd
