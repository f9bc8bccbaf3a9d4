#include "submit_settle.h"

#include <nlohmann/json.hpp>

#include "json_read.h"

namespace jsd {

void Settle::withdraw(uint64_t call_id, const std::function<bool(const ControlMsg&)>& send, Done done) {
  done_ = std::move(done);
  call_id_ = call_id;
  cancelling_ = false;
  ControlMsg m;
  m.type = ControlType::withdraw;
  m.id = call_id;
  if (!send(m)) return finish(Outcome::unknown);
  timer_.start(kSettleMs, [this] { finish(Outcome::unknown); });
}

void Settle::await_cancel(uint64_t call_id, uint64_t cancel_id, Done done) {
  done_ = std::move(done);
  call_id_ = call_id;
  cancel_id_ = cancel_id;
  cancelling_ = true;
  timer_.start(kSettleMs, [this] { finish(Outcome::unknown); });
}

bool Settle::on_msg(const ControlMsg& m) {
  if (!active()) return false;
  if (!cancelling_) {
    if (m.type != ControlType::withdrawn || m.id != call_id_) return false;
    finish(m.verdict == WithdrawVerdict::not_sent ? Outcome::not_run : Outcome::unknown);
    return true;
  }
  // A queued job that is cancelled ends its call ("ended", state cancelled)
  // and then the cancel is answered with the same record. Only a record
  // that never started proves the job did not run.
  if (m.type != ControlType::reply || m.ev.more || m.ev.object != "job") return false;
  if (m.ev.id != call_id_ && m.ev.id != cancel_id_) return false;
  nlohmann::json j;
  std::string state, err;
  double started = -1;
  int64_t pid = -1;
  bool unstarted = parse_json(m.ev.body, j) && j.is_object() && j.contains("record") && j["record"].is_object() &&
                   read_string(j["record"], "state", state, err) && state == "cancelled" &&
                   read_number(j["record"], "started", 0, 1e12, started, err, Need::kRequired) && started == 0 &&
                   read_int(j["record"], "pid", 0, INT64_MAX, pid, err, Need::kRequired) && pid == 0;
  if (unstarted) {
    finish(Outcome::not_run);
    return true;
  }
  if (m.ev.id == call_id_) return false;  // a real end: the submitter reports it
  finish(Outcome::unknown);               // the cancel found it started (or not there)
  return true;
}

void Settle::stop() {
  timer_.stop();
  done_ = nullptr;
}

void Settle::finish(Outcome o) {
  if (!done_) return;
  Done d = std::move(done_);
  done_ = nullptr;
  timer_.stop();
  d(o);
}

}  // namespace jsd
