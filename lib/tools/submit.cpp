#include "submit.h"

#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "control.h"
#include "event.h"
#include "exit_codes.h"
#include "fanout.h"
#include "job_input.h"
#include "json_read.h"
#include "stdin_feed.h"
#include "submit_report.h"
#include "submit_session.h"
#include "submit_settle.h"
#include "submitter.h"
#include "uvx.h"

namespace jsd {

using nlohmann::json;

namespace {

void write_all(int fd, std::string_view d) {
  while (!d.empty()) {
    ssize_t n = write(fd, d.data(), d.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // reader gone: the job's output has nowhere to go
    d.remove_prefix(size_t(n));
  }
}

}  // namespace

int Submitter::run() {
  std::string err;
  Target t;
  if (!resolve_target(o_.cfg, o_.node, t, err)) return fail(err);
  id_ = o_.id.empty() ? new_job_id() : o_.id;
  if (!valid_name(id_)) return fail("invalid job id '" + id_ + "' (letters, digits, . _ - :)");
  if (!open(err)) return fail(err);
  if (o_.input && o_.mode == SubmitOptions::Mode::submit) {
    feed_ = std::make_unique<StdinFeed>(loop_, 0, [this](auto& n, auto& b) { return send_input(n, b); });
    feed_->on_error = [this](const std::string& why) { cut_input(why); };
  }

  json body;
  if (o_.mode == SubmitOptions::Mode::submit) {
    // The node records when: a --no-wait submission may reach it much later.
    submitted_ = wall_time();
    body = submit_body(o_, id_, submitted_);
  } else if (o_.mode == SubmitOptions::Mode::attach) {
    body = attach_body();
    not_ours_ = true;  // an observer: an interrupt never cancels the job
  } else if (o_.mode == SubmitOptions::Mode::history) {
    body = {{"op", "history"}, {"n", o_.count}};
  } else if (o_.mode == SubmitOptions::Mode::jobs) {
    body = {{"op", "jobs"}};
  } else {
    body = {{"op", o_.mode == SubmitOptions::Mode::status ? "status" : "cancel"}, {"id", id_}};
  }
  body_ = body;
  // A submission is durable: on this node's disk before it is sent
  // (--no-wait: and flushed), delivered after a restart of this node.
  send_call(kCallId, body, o_.mode == SubmitOptions::Mode::submit);
  if (o_.timeout_s > 0)
    timer_.start(uint64_t(o_.timeout_s * 1000), [this] {
      give_up("no answer from " + o_.node + " within " + fmt_secs(o_.timeout_s) + " s", kExitJsdFailure);
    });
  uv_run(loop_, UV_RUN_DEFAULT);
  return code_;
}

// To join the job again: --attach asks for it by id; a submission sends
// itself again, marked "resume": a node that does not know the id yet
// (the first one was lost with a listener) runs it, one that does
// attaches it, in both cases from the offsets we printed. The id makes
// it run once either way.
nlohmann::json Submitter::attach_body() const {
  json b = o_.mode == SubmitOptions::Mode::attach ? json{{"op", "attach"}, {"id", id_}} : body_;
  b["resume"] = true;
  b["stdout_from"] = printed_[0];
  b["stderr_from"] = printed_[1];
  return b;
}

// The node may have lost the call that streams to us (its listener
// restarted, the link went down): join the job again by id, from what
// we printed. The answers of earlier calls are ignored from now on.
void Submitter::reattach() {
  if (done_ || settle_.active() || (started_ == 0 && !attached_ && !lost_listener_)) return;
  if (live_call_ >= kAttachId && !attach_answered_) return;  // the last one still waits for its node
  live_call_ = live_call_ < kAttachId ? kAttachId : live_call_ + 1;
  attach_answered_ = false;
  send_call(live_call_, attach_body(), false);
}

// Output of the call we follow, each byte once (offsets per stream).
void Submitter::print_output(int fd, std::string_view d) {
  printed_[fd - 1] += d.size();
  write_all(fd, d);
}

// Our input cannot reach the job whole: the node stops the job when the
// cut reaches it, and we wait for its end (jsd-submit(1), STANDARD INPUT).
void Submitter::cut_input(const std::string& why) {
  if (!feed_ || !feed_->in_progress(o_.node)) return;
  feed_->cut(o_.node, why);
  input_cut_ = why;
  fprintf(stderr, "jsd-submit: error: %s: job %s's input was cut after %llu bytes; %s stops it\n", why.c_str(),
          id_.c_str(), (unsigned long long)feed_->acked(o_.node), o_.node.c_str());
  grace_.start(uint64_t((o_.cfg.job_kill_grace_s + 5) * 1000), [this] {
    why_ = o_.node + " has not confirmed the end of the job whose input was cut";
    give_up_code_ = kExitJsdFailure;
    outcome_unknown();
  });
}

void Submitter::on_lost() {
  if (settle_.active()) return settle_.lost();
  cut_input("lost contact with the local jsd-listener");  // what it had queued is gone
  bool waits = (o_.mode == SubmitOptions::Mode::submit && !o_.no_wait) || o_.mode == SubmitOptions::Mode::attach;
  if (!waits || interrupted_) return give_up("lost contact with the local jsd-listener", kExitJsdFailure);
  // The local listener restarted (or died): connect again (within
  // --timeout) and join the job by id.
  if (!o_.quiet && !lost_listener_)
    fprintf(stderr, "jsd-submit: lost contact with the local jsd-listener; reconnecting\n");
  lost_listener_ = true;
  reconnect_.start(
      kReconnectMs,
      [this] {
        std::string err;
        if (done_ || !connect(err)) return;
        reconnect_.stop();
        if (!input_cut_.empty())  // the cut the old listener never got
          send_input(o_.node, encode_input_chunk(id_, feed_->read_bytes(), input_cut_, InputChunk::kCut));
        attach_answered_ = true;  // the old listener's calls are gone with it
        reattach();
      },
      kReconnectMs);
}

void Submitter::on_exit() {
  timer_.stop();
  reconnect_.stop();
  grace_.stop();
  accept_wait_.stop();
  watchdog_.stop();
  settle_.stop();
}

void Submitter::interrupted(int sig) {
  if (!ours_in_flight() || interrupted_ || settle_.active()) {
    // A second signal, or one while we take the request back: at once.
    settle_.stop();
    fprintf(stderr, "jsd-submit: interrupted%s\n",
            ours_in_flight() ? ("; job " + id_ + " may still run: jsd-submit --status " + id_ + " " + o_.node).c_str()
                             : "");
    return exit_with(exit_for_signal(sig));
  }
  interrupted_ = sig;
  if (o_.detach_on_interrupt) {
    if (started_ > 0 || queued_)
      fprintf(stderr, "jsd-submit: detached; job %s keeps running on %s (jsd-submit --status %s %s)\n", id_.c_str(),
              o_.node.c_str(), id_.c_str(), o_.node.c_str());
    else
      fprintf(stderr,
              "jsd-submit: interrupted before %s confirmed the job; it may still run: jsd-submit --status %s %s\n",
              o_.node.c_str(), id_.c_str(), o_.node.c_str());
    return exit_with(exit_for_signal(sig));
  }
  if (started_ == 0 && !queued_)
    return give_up("interrupted before " + o_.node + " confirmed the job", exit_for_signal(sig));
  fprintf(stderr, "jsd-submit: cancelling job %s on %s\n", id_.c_str(), o_.node.c_str());
  send_cancel();
  // Wait for the end confirmation, but not forever.
  grace_.start(uint64_t((o_.cfg.job_kill_grace_s + 5) * 1000), [this] {
    fprintf(stderr, "jsd-submit: error: no end confirmation from %s after cancelling\n", o_.node.c_str());
    exit_with(exit_for_signal(interrupted_));
  });
}

void Submitter::on_msg(std::string_view p) {
  if (done_) return;
  ControlMsg m;
  std::string err;
  if (!decode_control(p, m, err)) return give_up("malformed answer from the listener: " + err, kExitJsdFailure);
  if (settle_.on_msg(m)) return;
  // A reply of another type than expected must not end us unreported.
  try {
    on_control(m);
  } catch (const std::exception& e) {
    give_up("malformed reply from " + o_.node + ": " + e.what(), kExitJsdFailure);
  }
}

void Submitter::on_control(const ControlMsg& m) {
  std::string text;
  switch (read_control_notice(m, o_.node, text)) {
    case ControlNotice::fatal:
      // An error: the listener did not send our call. A refused link:
      // the call waits in the queue, and may go when the link comes up.
      if (m.type == ControlType::error) return (void)fail(text);
      return give_up(text, kExitJsdFailure);
    case ControlNotice::note:
      if (!o_.quiet && text != last_note_)  // once per state, not per retry
        fprintf(stderr, "jsd-submit: %s: link %s (the request waits in the queue)\n", o_.node.c_str(), text.c_str());
      last_note_ = text;
      cut_input("the link to " + o_.node + " went " + text);
      // The link broke while the job ran: what it streamed to us may be
      // lost with it (its node may have restarted). Join again.
      return reattach();
    case ControlNotice::none:
      break;
  }
  if (m.type != ControlType::reply) return;
  last_rx_ms_ = now_ms();
  if (m.ev.id == kCancelId) return;  // the answer to our cancel: the end confirmation follows
  if (m.ev.id == kWatchId) return on_watchdog(m.ev.body);
  if (m.ev.object == "job.stdin") return feed_ ? feed_->on_ack(o_.node, m.ev.body) : void();  // acks
  if (m.ev.id != live_call_) return;  // a call we no longer follow
  if (m.ev.object == "job.stdout") return print_output(1, m.ev.body);
  if (m.ev.object == "job.stderr") return print_output(2, m.ev.body);
  json j;
  parse_json(m.ev.body, j);
  if (!j.is_object()) return give_up("malformed reply from " + o_.node, kExitJsdFailure);
  // Every member is read by type first (a peer may send anything): a
  // reply of the wrong shape is one error line, before anything changes.
  JsonFields f(j);
  std::string type = f.str("type");
  bool waiting = f.boolean("waiting", false);
  if (!f.bad().empty()) return give_up("malformed reply from " + o_.node + ": " + f.bad(), kExitJsdFailure);
  if (j.contains("error"))
    return (void)fail(j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
  if (type == "queued_locally") {  // --no-wait: on this node's disk
    stored_ = true;
    if (waiting) return await_acceptance();
    if (accept_wait_.active() && !o_.quiet)
      fprintf(stderr, "jsd-submit: %s: the link went down; job %s stays queued on this node\n", o_.node.c_str(),
              id_.c_str());
    return queued("queued");
  }
  if (o_.no_wait && (type == "accepted" || type == "duplicate")) {
    const json none = json::object();
    JsonFields r(j.contains("record") && j["record"].is_object() ? j["record"] : none);
    std::string state = r.str("state");
    if (!r.bad().empty()) return give_up("malformed record from " + o_.node + ": " + r.bad(), kExitJsdFailure);
    if (type == "duplicate" && !o_.quiet)
      fprintf(stderr, "jsd-submit: %s: job id %s is already known there (%s); not run again\n", o_.node.c_str(),
              id_.c_str(), state.empty() ? "?" : state.c_str());
    return queued(state.empty() ? "queued" : state);
  }
  if (type == "queued") {
    int64_t position = f.integer("position", 0, INT64_MAX, 0);
    if (!f.bad().empty()) return give_up("malformed reply from " + o_.node + ": " + f.bad(), kExitJsdFailure);
    queued_ = true;
    if (!o_.quiet)
      fprintf(stderr, "jsd-submit: %s: job %s queued (position %lld)\n", o_.node.c_str(), id_.c_str(),
              (long long)position);
    return;
  }
  if (type == "started") return on_started(j);
  if (type == "attached") return on_attached(j);
  if (type == "history" || type == "jobs") return exit_with(print_listing(j, o_.node, type, o_.json));
  if (type == "ended" || type == "status" || type == "cancel" || type == "duplicate" || type == "refused")
    return on_record(type, j["record"]);
  give_up("unexpected reply '" + type + "' from " + o_.node, kExitJsdFailure);
}

void Submitter::on_started(const json& j) {
  JsonFields f(j);
  double started = f.number("started", 0, 1e12, wall_time());
  int64_t pid = f.integer("pid", 0, INT32_MAX, 0);
  if (!f.bad().empty()) return give_up("malformed reply from " + o_.node + ": " + f.bad(), kExitJsdFailure);
  bool again = started_ > 0 || attached_;
  started_ = started;
  if (again) return;  // an attached watcher hears the start too
  start_watchdog();
  std::string err;
  if (feed_ && !not_ours_) {  // our own job (or its resubmission): the input follows its start
    feed_->add(o_.node, id_);
    if (!feed_->start(err)) cut_input(err);
  }
  if (!o_.quiet)
    fprintf(stderr, "jsd-submit: %s: job %s started: id %s, pid %lld\n", o_.node.c_str(), job_name().c_str(),
            id_.c_str(), (long long)pid);
}

void Submitter::on_attached(const json& j) {
  JsonFields f(j);
  uint64_t first[2] = {uint64_t(f.integer("stdout_first", 0, INT64_MAX, int64_t(printed_[0]))),
                       uint64_t(f.integer("stderr_first", 0, INT64_MAX, int64_t(printed_[1])))};
  std::string state = f.str("state", "?");
  // The node joined us to the job as a resumption of our own submission
  // (we, or our listener for us, sent it again): the job is ours.
  bool resumed = f.boolean("resumed", false);
  if (!f.bad().empty()) return give_up("malformed reply from " + o_.node + ": " + f.bad(), kExitJsdFailure);
  attach_answered_ = true;
  bool first_time = !attached_ && started_ == 0;
  // Our submission's id was running already (a retry): that earlier
  // submission's job is not ours to cancel.
  if (first_time && o_.mode == SubmitOptions::Mode::submit && !resumed) not_ours_ = true;
  // Ours for sure (a random id, or our own submission resumed) and its
  // start went unheard: its input cannot follow it (only the start's
  // answer takes it), so it is cut.
  if (first_time && feed_ && (o_.id.empty() || resumed)) {
    feed_->add(o_.node, id_);
    cut_input("the start of job " + id_ + " was not heard (the link or the listener went)");
  }
  attached_ = true;
  // We asked for the output from what we printed: older output than the
  // node sends is no longer kept there. (A retry's first answer starts at
  // the output's present end by design: nothing was lost to it.)
  bool asked = resumed || live_call_ >= kAttachId || o_.mode == SubmitOptions::Mode::attach;
  for (int fd : {1, 2}) {
    uint64_t from = first[fd - 1];
    if (from > printed_[fd - 1] && asked && !o_.quiet)
      fprintf(stderr, "jsd-submit: %s: %llu bytes of job %s's %s were not kept\n", o_.node.c_str(),
              (unsigned long long)(from - printed_[fd - 1]), id_.c_str(), fd == 1 ? "stdout" : "stderr");
    if (from > printed_[fd - 1]) printed_[fd - 1] = from;
  }
  if (!o_.quiet && first_time)
    fprintf(stderr, "jsd-submit: %s: attached to job %s (%s)\n", o_.node.c_str(), id_.c_str(), state.c_str());
  if (first_time) start_watchdog();
}

std::string new_job_id() {
  unsigned char b[8];
  randombytes_buf(b, sizeof b);
  char hex[17];
  sodium_bin2hex(hex, sizeof hex, b, sizeof b);
  return hex;
}

int run_submit(const SubmitOptions& o) {
  if (sodium_init() < 0) {
    fprintf(stderr, "jsd-submit: error: libsodium failed to initialise\n");
    return kExitJsdFailure;
  }
  if (is_target_set(o.node)) {
    if (o.mode != SubmitOptions::Mode::submit) {
      fprintf(
          stderr,
          "jsd-submit: error: --status, --cancel, --attach, --history and --jobs take one NODE, not a target set\n");
      return kExitJsdFailure;
    }
    std::vector<TargetEntry> targets;
    std::string err;
    if (!read_target_set(o.node, o.cfg, targets, err)) {
      fprintf(stderr, "jsd-submit: error: %s\n", err.c_str());
      return kExitJsdFailure;
    }
    return run_fanout(o, targets);
  }
  return with_loop([&](uv_loop_t* loop) { return run_submit_on(loop, o, nullptr); }, kExitJsdFailure);
}

int run_submit_on(uv_loop_t* loop, const SubmitOptions& o, ControlChannel* channel) {
  return Submitter(loop, o, channel).run();
}

}  // namespace jsd
