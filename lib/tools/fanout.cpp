#include "fanout.h"

#include <sodium.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "control.h"
#include "exit_codes.h"
#include "fanout_node.h"
#include "json_read.h"
#include "names.h"
#include "node_output.h"
#include "stdin_feed.h"
#include "submit_report.h"
#include "submit_session.h"
#include "submit_settle.h"
#include "uvx.h"

namespace jsd {

using nlohmann::json;

namespace {

class Fanout : public SubmitSession {
 public:
  Fanout(uv_loop_t* loop, const SubmitOptions& o, const std::vector<TargetEntry>& targets, ControlChannel* channel)
      : SubmitSession(loop, o, channel), out_(o.gather, o.json ? 2 : 1, 2), watchdog_(loop), grace_(loop) {
    for (auto& t : targets) {
      auto n = std::make_unique<NodeRun>();
      n->node = t.key;
      n->target_error = t.error;
      n->index = runs_.size();
      runs_.push_back(std::move(n));
      order_.push_back(t.key);
    }
    width_ = o.fanout;
    if (o.batch > 0 && o.batch < width_) width_ = o.batch;
  }

  int run() {
    std::string err;
    if (!o_.id.empty() && !valid_name(o_.id)) {
      fprintf(stderr, "jsd-submit: error: invalid job id '%s' (letters, digits, . _ - :)\n", o_.id.c_str());
      return kExitJsdFailure;
    }
    // -i: one read of our stdin for every node, so they all run at once.
    if (o_.input && runs_.size() > width_) {
      fprintf(stderr,
              "jsd-submit: error: -i sends the same input to every node at once: %zu nodes are more than %s %zu\n",
              runs_.size(), o_.batch ? "--batch" : "--fanout", width_);
      return kExitJsdFailure;
    }
    if (o_.input) feed_ = std::make_unique<StdinFeed>(loop_, 0, [this](auto& n, auto& b) { return send_input(n, b); });
    if (feed_)
      feed_->on_error = [this](const std::string& why) {
        for (auto& n : runs_) cut_input(*n, why);
      };
    // Targets that are mistakes end first, each on its own line.
    for (auto& n : runs_)
      if (!n->target_error.empty()) finish_failed(*n, FailKind::unknown_node, n->target_error);
    if (!open(err)) {  // no listener: every target fails alike (not ready_: nothing starts)
      for (auto& n : runs_)
        if (n->phase != NodeRun::Phase::done) finish_failed(*n, FailKind::lost, err);
      ready_ = true;
      check_done();
      return code_;
    }
    ready_ = true;
    if (!o_.no_wait)
      watchdog_.start(
          kWatchMs, [this] { watch(); }, kWatchMs);
    start_more();
    check_done();
    uv_run(loop_, UV_RUN_DEFAULT);
    return code_;
  }

 private:
  static constexpr uint64_t kWatchMs = 15000;

  std::string job_name() const { return o_.argv.empty() ? o_.job : "(adhoc)"; }

  // Starts waiting targets while fewer than the width run and neither
  // --max-failures nor a signal stopped us.
  void start_more() {
    if (!ready_ || done_) return;
    hold_sends();  // the window in one write: one bundle per gateway
    while (running_ < width_ && next_ < runs_.size() && !stopping()) {
      NodeRun& n = *runs_[next_++];
      if (n.phase == NodeRun::Phase::waiting) start(n);
    }
    release_sends();
    if (stopping())
      for (; next_ < runs_.size(); ++next_) {
        NodeRun& n = *runs_[next_];
        if (n.phase != NodeRun::Phase::waiting) continue;
        n.not_started = true;
        n.phase = NodeRun::Phase::done;
        n.why = interrupted_ ? "interrupted" : "--max-failures " + std::to_string(o_.max_failures) + " reached";
        if (o_.json) print_json(n, {{"node", n.node}, {"job", job_name()}, {"state", "not_started"}, {"error", n.why}});
      }
  }

  bool stopping() const { return interrupted_ != 0 || lost_ || (o_.max_failures > 0 && failures_ >= o_.max_failures); }

  void start(NodeRun& n) {
    n.phase = NodeRun::Phase::running;
    ++running_;
    n.id = o_.id.empty() ? new_job_id() : derived_id(o_.id, n.node);
    n.submitted = wall_time();
    send_call(n.call_id(), n.node, submit_body(o_, n.id, n.submitted), o_.no_wait);
    if (o_.timeout_s > 0) {
      n.timeout = std::make_unique<Timer>(loop_);
      n.timeout->start(uint64_t(o_.timeout_s * 1000), [this, &n] {
        give_up(n, n.heard ? FailKind::timeout : FailKind::unreachable,
                "no answer from " + n.node + " within " + fmt_secs(o_.timeout_s) + " s");
      });
    }
  }

  // The input flows once every node's job started or ended (the same bytes
  // to all: none can join later).
  void start_input() {
    std::string err;
    for (auto& n : runs_)
      if (n->phase != NodeRun::Phase::done && !feed_->has(n->node)) return;
    if (!feed_->start(err)) feed_->on_error(err);
  }

  void cut_input(NodeRun& n, const std::string& why) {
    if (!feed_ || !feed_->in_progress(n.node)) return;
    feed_->cut(n.node, why);
    fprintf(stderr, "jsd-submit: error: %s: %s: job %s's input was cut after %llu bytes; %s stops it\n", n.node.c_str(),
            why.c_str(), n.id.c_str(), (unsigned long long)feed_->acked(n.node), n.node.c_str());
  }

  void send_cancel(NodeRun& n) {
    if (n.cancel_sent) return;
    n.cancel_sent = true;
    send_call(n.cancel_id(), n.node, {{"op", "cancel"}, {"id", n.id}}, false);
  }

  // We stop waiting for node n (see Submitter::give_up): what may still be
  // queued is taken back first, so that 255 promises it did not run.
  void give_up(NodeRun& n, FailKind kind, const std::string& why) {
    if (done_ || n.phase != NodeRun::Phase::running || (n.settle && n.settle->active())) return;
    if (n.timeout) n.timeout->stop();
    n.give_up_kind = kind;
    n.give_up_why = why;
    if (o_.no_wait || !connected()) return finish_failed(n, kind, why);
    if (n.started > 0) return outcome_unknown(n);
    n.settle = std::make_unique<Settle>(loop_);
    auto settled = [this, &n](Settle::Outcome out) {
      if (out == Settle::Outcome::not_run) {
        return finish_failed(n, n.give_up_kind, n.give_up_why + "; " + not_run_how(n.queued),
                             interrupted_ ? exit_for_signal(interrupted_) : kExitJsdFailure);
      }
      outcome_unknown(n);
    };
    if (n.queued) {
      send_cancel(n);
      return n.settle->await_cancel(n.call_id(), n.cancel_id(), settled);
    }
    n.settle->withdraw(
        n.call_id(), [this](const ControlMsg& m) { return send_msg(m); }, settled);
  }

  void outcome_unknown(NodeRun& n) {
    bool started = n.started > 0;
    if (started && !o_.detach_on_interrupt) send_cancel(n);
    std::string what = started ? "job " + n.id + " had started" + (n.cancel_sent ? ", a cancel was sent" : "")
                               : "job " + n.id + " may have reached " + n.node + " and may run";
    std::string why = n.give_up_why + "; " + what + ": jsd-submit --status " + n.id + " " + n.node;
    int code = interrupted_ ? exit_for_signal(interrupted_) : kExitOutcomeUnknown;
    json j = unknown_json(n.id, n.node, job_name(), n.submitted);
    j["exit_status"] = code;
    j["exit_from"] = "jsd";
    j["error"] = why;
    j["error_kind"] = fail_kind_name(n.give_up_kind);
    finish(n, code, n.give_up_kind, why, j, true);
  }

  // jsd failed for n and its job did not (and will not) run.
  void finish_failed(NodeRun& n, FailKind kind, const std::string& why, int code = kExitJsdFailure) {
    json j = {{"node", n.node},
              {"job", job_name()},
              {"state", "error"},
              {"exit_status", code},
              {"exit_from", "jsd"},
              {"error", why},
              {"error_kind", fail_kind_name(kind)}};
    if (!n.id.empty()) j["id"] = n.id;
    finish(n, code, kind, why, j, true);
  }

  void finish(NodeRun& n, int code, FailKind kind, const std::string& why, const json& j, bool say,
              ExitFrom from = ExitFrom::jsd) {
    if (n.phase == NodeRun::Phase::done || done_) return;
    if (n.phase == NodeRun::Phase::running) --running_;
    n.phase = NodeRun::Phase::done;
    if (feed_) feed_->drop(n.node), start_input();
    n.code = code;
    n.from = from;
    n.kind = kind;
    n.why = why;
    if (n.timeout) n.timeout->stop();
    if (n.settle) n.settle->stop();
    out_.node_done(n.node);
    if (say && !why.empty() && !o_.json) fprintf(stderr, "jsd-submit: %s: error: %s\n", n.node.c_str(), why.c_str());
    if (o_.json && !j.is_null()) print_json(n, j);
    if (code != kExitOk) ++failures_;
    start_more();
    check_done();
  }

  void print_json(const NodeRun&, const json& j) { std::cout << dump_json(j) << "\n" << std::flush; }

  NodeRun* node_of(uint64_t id, int& which) {
    if (id == 0) return nullptr;
    size_t i = size_t((id - 1) / 4);
    which = int((id - 1) % 4);
    if (i >= runs_.size()) return nullptr;
    return runs_[i].get();
  }

  void on_msg(std::string_view p) override {
    ControlMsg m;
    std::string err;
    if (!decode_control(p, m, err)) {
      fprintf(stderr, "jsd-submit: error: malformed answer from the listener: %s\n", err.c_str());
      return on_lost();
    }
    int which = 0;
    NodeRun* n = node_of(m.type == ControlType::reply ? m.ev.id : m.id, which);
    if (!n || n->phase != NodeRun::Phase::running) return;
    if (n->settle && n->settle->on_msg(m)) return;
    try {
      on_control(*n, m, which);
    } catch (const std::exception& e) {
      give_up(*n, FailKind::lost, "malformed reply from " + n->node + ": " + e.what());
    }
  }

  void on_control(NodeRun& n, const ControlMsg& m, int which) {
    std::string text;
    switch (read_control_notice(m, n.node, text)) {
      case ControlNotice::fatal:
        if (m.type == ControlType::error) return finish_failed(n, FailKind::refused, text);
        return give_up(n, FailKind::refused, text);
      case ControlNotice::note:
        if (!o_.quiet && text != n.last_note)
          fprintf(stderr, "jsd-submit: %s: link %s (the request waits in the queue)\n", n.node.c_str(), text.c_str());
        n.last_note = text;
        return cut_input(n, "the link went " + text);
      case ControlNotice::none:
        break;
    }
    if (m.type != ControlType::reply) return;
    n.heard = true;
    n.last_rx_ms = now_ms();
    if (m.ev.object == "job.stdin") return feed_ ? feed_->on_ack(n.node, m.ev.body) : void();  // acks
    if (which == 1) return;  // the answer to our cancel: the end confirmation follows
    if (which == 2) return on_watchdog(n, m.ev.body);
    if (m.ev.object == "job.stdout") return out_.data(n.node, 0, m.ev.body);
    if (m.ev.object == "job.stderr") return out_.data(n.node, 1, m.ev.body);
    json j;
    parse_json(m.ev.body, j);
    if (!j.is_object()) return give_up(n, FailKind::lost, "malformed reply from " + n.node);
    JsonFields f(j);  // by type first: a peer may send anything
    std::string type = f.str("type");
    double started = f.number("started", 0, 1e12, wall_time());
    if (!f.bad().empty()) return give_up(n, FailKind::lost, "malformed reply from " + n.node + ": " + f.bad());
    if (j.contains("error"))
      return finish_failed(n, FailKind::refused,
                           j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
    if (type == "queued_locally") {
      if (o_.json)
        print_json(n, queued_json(n.id, n.node, job_name(), n.submitted));
      else
        std::cout << n.node << " " << n.id << "\n" << std::flush;
      return finish(n, kExitOk, FailKind::none, "", nullptr, false);
    }
    if (type == "queued") {
      n.queued = true;
      return;
    }
    if (type == "started") {
      n.started = started;
      if (feed_) feed_->add(n.node, n.id), start_input();
      return;
    }
    // Joined to the job by id: a retry of a running id, or our submission
    // sent again by the listener after a broken link (its job may have run
    // meanwhile): its output follows, then its end. (No input follows it.)
    if (type == "attached") {
      if (n.started == 0) n.started = wall_time();
      return;
    }
    if (type == "ended" || type == "duplicate") return on_record(n, type, j["record"]);
    give_up(n, FailKind::lost, "unexpected reply '" + type + "' from " + n.node);
  }

  // The end confirmation waits in the node's memory; a node that stopped
  // lost it. After a quiet spell each running job's record is asked for.
  void watch() {
    for (auto& n : runs_)
      if (n->phase == NodeRun::Phase::running && n->started > 0 && now_ms() - n->last_rx_ms >= kWatchMs)
        send_call(n->watch_id(), n->node, {{"op", "status"}, {"id", n->id}}, false);
  }

  void on_watchdog(NodeRun& n, const std::string& body) {
    json j;
    parse_json(body, j);
    if (!j.is_object() || !j.contains("record") || !j["record"].is_object()) return;
    const json& r = j["record"];
    JobEnd e;
    std::string err;
    if (!read_job_end(r, e, err) || !job_state_finished(e.state)) return;
    if (!o_.quiet)
      fprintf(stderr, "jsd-submit: %s: the end confirmation of job %s was lost; this is the node's record\n",
              n.node.c_str(), n.id.c_str());
    on_record(n, "ended", r);
  }

  void on_record(NodeRun& n, const std::string& type, const json& r) {
    JobEnd e;
    std::string err;
    if (!read_job_end(r, e, err)) return give_up(n, FailKind::lost, "malformed record from " + n.node + ": " + err);
    std::string state = job_state_name(e.state);
    if (type == "duplicate" && !job_state_finished(e.state))
      return finish_failed(n, FailKind::refused,
                           "job id " + n.id + " is already " + state + " on " + n.node + " (jsd-submit --status " +
                               n.id + " " + n.node + ")");
    if (type == "duplicate" && !o_.quiet)
      fprintf(stderr, "jsd-submit: %s: job id %s already ran there; not run again\n", n.node.c_str(), n.id.c_str());
    // Its one line (an unknowable outcome's included) is printed here.
    print_end_notes(r, n.node, n.id, o_.quiet, interrupted_ != 0);
    json out = end_json(r, n.id, n.node, job_name(), n.submitted, type == "duplicate");
    FailKind kind = FailKind::none;
    // The summary says how a job ended when its exit status does not.
    std::string why = e.state == JobState::exited ? "" : state;
    if (job_state_unknowable(e.state)) {
      kind = e.state == JobState::lost ? FailKind::lost : FailKind::unknown;
      why = unknowable_why(e, r, n.id);
      out["error_kind"] = fail_kind_name(kind);
    }
    finish(n, interrupted_ ? exit_for_signal(interrupted_) : e.exit_status(), kind, why, out, false, e.exit_from());
  }

  void on_lost() override {
    if (done_) return;
    lost_ = true;
    for (auto& n : runs_) {
      if (n->phase != NodeRun::Phase::running) continue;
      if (n->settle) n->settle->stop();
      n->give_up_kind = FailKind::lost;
      n->give_up_why = "lost contact with the local jsd-listener";
      cut_input(*n, n->give_up_why);
      // Nothing can be taken back without the listener: whatever it was
      // given may go out still.
      outcome_unknown(*n);
    }
    start_more();
    check_done();
  }

  void interrupted(int sig) override {
    if (interrupted_ || o_.detach_on_interrupt) {
      // A second signal, or leaving the jobs be: at once.
      interrupted_ = sig;
      for (auto& n : runs_)
        if (n->phase == NodeRun::Phase::running) {
          if (n->started > 0 || n->queued)
            fprintf(stderr, "jsd-submit: %s: job %s keeps running (jsd-submit --status %s %s)\n", n->node.c_str(),
                    n->id.c_str(), n->id.c_str(), n->node.c_str());
          else
            fprintf(stderr,
                    "jsd-submit: %s: interrupted before the job was confirmed; it may still run: jsd-submit "
                    "--status %s %s\n",
                    n->node.c_str(), n->id.c_str(), n->node.c_str());
        }
      code_override_ = exit_for_signal(sig);
      end_now();
      return;
    }
    interrupted_ = sig;
    start_more();  // the rest: not started
    for (auto& n : runs_) {
      if (n->phase != NodeRun::Phase::running) continue;
      if (n->started > 0 || n->queued) {
        fprintf(stderr, "jsd-submit: %s: cancelling job %s\n", n->node.c_str(), n->id.c_str());
        send_cancel(*n);
      } else {
        give_up(*n, FailKind::lost, "interrupted before " + n->node + " confirmed the job");
      }
    }
    grace_.start(uint64_t((o_.cfg.job_kill_grace_s + 5) * 1000), [this] {
      fprintf(stderr, "jsd-submit: error: no end confirmation from every node after cancelling\n");
      code_override_ = exit_for_signal(interrupted_);
      end_now();
    });
    check_done();
  }

  void check_done() {
    if (done_ || !ready_) return;
    for (auto& n : runs_)
      if (n->phase != NodeRun::Phase::done) return;
    end_now();
  }

  void end_now() {
    if (done_) return;
    out_.finish(order_);
    int code = fanout_summary(runs_, o_.quiet, stderr);
    exit_with(code_override_ ? code_override_ : code);
  }

  void on_exit() override {
    watchdog_.stop();
    grace_.stop();
    for (auto& n : runs_) {
      if (n->timeout) n->timeout->stop();
      if (n->settle) n->settle->stop();
    }
  }

  NodeOutput out_;
  std::unique_ptr<StdinFeed> feed_;  // -i
  std::vector<std::unique_ptr<NodeRun>> runs_;
  std::vector<std::string> order_;
  Timer watchdog_, grace_;
  size_t width_ = 64, running_ = 0, next_ = 0, failures_ = 0;
  int interrupted_ = 0, code_override_ = 0;
  bool lost_ = false, ready_ = false;
};

}  // namespace

int run_fanout(const SubmitOptions& o, const std::vector<TargetEntry>& targets) {
  if (sodium_init() < 0) {
    fprintf(stderr, "jsd-submit: error: libsodium failed to initialise\n");
    return kExitJsdFailure;
  }
  return with_loop([&](uv_loop_t* loop) { return run_fanout_on(loop, o, targets, nullptr); }, kExitJsdFailure);
}

int run_fanout_on(uv_loop_t* loop, const SubmitOptions& o, const std::vector<TargetEntry>& targets,
                  ControlChannel* channel) {
  return Fanout(loop, o, targets, channel).run();
}

}  // namespace jsd
