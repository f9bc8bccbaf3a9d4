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
#include "uvx.h"

namespace jsd {
namespace {

using nlohmann::json;

void write_all(int fd, std::string_view d) {
  while (!d.empty()) {
    ssize_t n = write(fd, d.data(), d.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // reader gone: the job's output has nowhere to go
    d.remove_prefix(size_t(n));
  }
}

std::string fmt_time(double t) { return t > 0 ? iso_time(t) : "-"; }

class Submitter {
 public:
  Submitter(uv_loop_t* loop, const SubmitOptions& o) : loop_(loop), o_(o), timer_(loop), grace_(loop) {}

  int run() {
    std::string err;
    Target t;
    if (!resolve_target(o_.cfg, o_.node, t, err)) return fail(err);
    id_ = o_.id.empty() ? new_job_id() : o_.id;
    if (!valid_name(id_)) return fail("invalid job id '" + id_ + "' (letters, digits, . _ - :)");
    s_ = open_control_stream(loop_, o_.cfg, err);
    if (!s_) return fail(err);
    s_->on_frame = [this](std::string_view p) { on_msg(p); };
    s_->on_close = [this](const std::string&) {
      s_ = nullptr;
      if (!done_) fail("lost contact with the local jsd-listener");
    };
    s_->start(o_.cfg.max_frame + 4096);
    sig_int_ = std::make_unique<Signal>(loop_, SIGINT, [this] { interrupted(SIGINT); });
    sig_term_ = std::make_unique<Signal>(loop_, SIGTERM, [this] { interrupted(SIGTERM); });
    sig_hup_ = std::make_unique<Signal>(loop_, SIGHUP, [this] { interrupted(SIGHUP); });

    json body;
    if (o_.mode == SubmitOptions::Mode::submit) {
      body = {{"op", "submit"}, {"id", id_}, {"params", o_.params}, {"stream", !o_.no_wait}, {"durable", o_.no_wait}};
      if (o_.argv.empty())
        body["job"] = o_.job;
      else
        body["argv"] = o_.argv;
      submitted_ = wall_time();
      // A submission that arrives after we gave up must not run (and must
      // not use up its id, so that a retry with --id runs it).
      if (o_.timeout_s > 0 && !o_.no_wait) body["expires"] = submitted_ + o_.timeout_s;
    } else {
      body = {{"op", o_.mode == SubmitOptions::Mode::status ? "status" : "cancel"}, {"id", id_}};
    }
    send_call(1, body, o_.no_wait);
    if (o_.timeout_s > 0)
      timer_.start(uint64_t(o_.timeout_s * 1000), [this] {
        if (o_.mode == SubmitOptions::Mode::submit && started_ > 0 && !o_.no_wait) send_cancel();
        fail("no answer from " + o_.node + " within " + fmt_secs(o_.timeout_s) +
             (started_ > 0 && o_.mode == SubmitOptions::Mode::submit ? " s; the job was cancelled" : " s"));
      });
    uv_run(loop_, UV_RUN_DEFAULT);
    return code_;
  }

 private:
  static std::string fmt_secs(double s) {
    char b[32];
    snprintf(b, sizeof b, "%g", s);
    return b;
  }

  void send_call(uint64_t id, const json& body, bool durable) {
    ControlMsg m;
    m.type = ControlType::send;
    m.ev.kind = Kind::call;
    m.ev.id = id;
    m.ev.to = o_.node;
    m.ev.object = "job";
    m.ev.body = dump_json(body);
    m.durable = durable;
    if (s_) s_->send(encode_control(m));
  }

  void send_cancel() {
    if (cancel_sent_) return;
    cancel_sent_ = true;
    send_call(2, {{"op", "cancel"}, {"id", id_}}, false);
  }

  int fail(const std::string& why) {
    if (!done_) fprintf(stderr, "jsd-submit: error: %s\n", why.c_str());
    // We give up on a submission that may still be delivered later (it
    // waits in the queue): make sure it does not run unseen. One the node
    // has not confirmed and that carries an expiry runs out by itself.
    bool confirmed = started_ > 0 || queued_;
    if (!done_ && o_.mode == SubmitOptions::Mode::submit && !o_.no_wait && submitted_ > 0 && !o_.detach_on_interrupt &&
        !not_ours_ && (confirmed || o_.timeout_s <= 0))
      send_cancel();
    code_ = kExitJsdFailure;
    finish_after_flush();
    return kExitJsdFailure;
  }

  void exit_with(int code) {
    code_ = code;
    finish_after_flush();
  }

  // The last thing we sent (a cancel) must reach the listener before we go.
  void finish_after_flush() {
    if (done_) return;
    done_ = true;
    timer_.stop();
    grace_.stop();
    watchdog_.stop();
    sig_int_.reset();
    sig_term_.reset();
    sig_hup_.reset();
    if (!s_) return;
    Stream* s = s_;
    s_ = nullptr;
    s->mute();
    s->on_close = nullptr;
    s->when_flushed([s] { s->close(); });
  }

  void interrupted(int sig) {
    if (o_.mode != SubmitOptions::Mode::submit || o_.no_wait || interrupted_) {
      fprintf(stderr, "jsd-submit: interrupted\n");
      return exit_with(exit_for_signal(sig));
    }
    interrupted_ = sig;
    if (o_.detach_on_interrupt || (started_ == 0 && !queued_)) {
      if (started_ > 0 || queued_)
        fprintf(stderr, "jsd-submit: detached; job %s keeps running on %s (jsd-submit --status %s %s)\n", id_.c_str(),
                o_.node.c_str(), id_.c_str(), o_.node.c_str());
      else
        fprintf(stderr,
                "jsd-submit: interrupted before %s confirmed the job; it may still run: jsd-submit --status %s %s\n",
                o_.node.c_str(), id_.c_str(), o_.node.c_str());
      if (!o_.detach_on_interrupt) send_cancel();
      return exit_with(exit_for_signal(sig));
    }
    fprintf(stderr, "jsd-submit: cancelling job %s on %s\n", id_.c_str(), o_.node.c_str());
    send_cancel();
    // Wait for the end confirmation, but not forever.
    grace_.start(uint64_t((o_.cfg.job_kill_grace_s + 5) * 1000), [this] {
      fprintf(stderr, "jsd-submit: error: no end confirmation from %s after cancelling\n", o_.node.c_str());
      exit_with(exit_for_signal(interrupted_));
    });
  }

  void on_msg(std::string_view p) {
    if (done_) return;
    ControlMsg m;
    std::string err;
    if (!decode_control(p, m, err)) return (void)fail("malformed answer from the listener: " + err);
    std::string text;
    switch (read_control_notice(m, o_.node, text)) {
      case ControlNotice::fatal:
        return (void)fail(text);
      case ControlNotice::note:
        if (!o_.quiet && text != last_note_)  // once per state, not per retry
          fprintf(stderr, "jsd-submit: %s: link %s (the request waits in the queue)\n", o_.node.c_str(), text.c_str());
        last_note_ = text;
        return;
      case ControlNotice::none:
        break;
    }
    if (m.type != ControlType::reply) return;
    last_rx_ms_ = now_ms();
    if (m.ev.id == 2) return;  // the answer to our cancel: the end confirmation follows
    if (m.ev.id == 3) return on_watchdog(m.ev.body);
    if (m.ev.object == "job.stdout") return write_all(1, m.ev.body);
    if (m.ev.object == "job.stderr") return write_all(2, m.ev.body);
    auto j = json::parse(m.ev.body, nullptr, false);
    if (!j.is_object()) return (void)fail("malformed reply from " + o_.node);
    std::string type = j.value("type", "");
    if (j.contains("error"))
      return (void)fail(j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
    if (type == "queued_locally") {
      if (o_.json)
        std::cout << dump_json({{"id", id_},
                                {"node", o_.node},
                                {"job", job_name()},
                                {"state", "queued"},
                                {"submitted", submitted_}})
                  << std::endl;
      else
        std::cout << id_ << std::endl;
      return exit_with(kExitOk);
    }
    if (type == "queued") {
      queued_ = true;
      if (!o_.quiet)
        fprintf(stderr, "jsd-submit: %s: job %s queued (position %d)\n", o_.node.c_str(), id_.c_str(),
                j.value("position", 0));
      return;
    }
    if (type == "started") {
      started_ = j.value("started", wall_time());
      // The end confirmation waits in the node's memory; if that node
      // stops, it is gone. After a quiet spell, ask for the job's record.
      watchdog_.start(
          kWatchMs,
          [this] {
            if (now_ms() - last_rx_ms_ >= kWatchMs && !done_) send_call(3, {{"op", "status"}, {"id", id_}}, false);
          },
          kWatchMs);
      if (!o_.quiet)
        fprintf(stderr, "jsd-submit: %s: job %s started: id %s, pid %d\n", o_.node.c_str(), job_name().c_str(),
                id_.c_str(), j.value("pid", 0));
      return;
    }
    if (type == "ended" || type == "status" || type == "cancel" || type == "duplicate")
      return on_record(type, j["record"]);
    fail("unexpected reply '" + type + "' from " + o_.node);
  }

  // The answer to a watchdog status call.
  void on_watchdog(const std::string& body) {
    auto j = json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("record")) return;  // no answer yet is fine: the link may be down
    const json& r = j["record"];
    std::string state = r.value("state", "");
    if (state == "queued" || state == "running") return;
    if (!o_.quiet)
      fprintf(stderr, "jsd-submit: %s: the end confirmation of job %s was lost; this is the node's record\n",
              o_.node.c_str(), id_.c_str());
    if (state == "lost") return (void)fail("job " + id_ + " was lost: " + r.value("error", "the node restarted"));
    on_record("ended", r);
  }

  std::string job_name() const { return o_.argv.empty() ? o_.job : "(adhoc)"; }

  void on_record(const std::string& type, const json& r) {
    std::string state = r.value("state", "?");
    int status = r.value("exit_status", kExitJobLost);
    if (type == "status" || type == "cancel") {
      if (o_.json) {
        std::cout << dump_json(r) << std::endl;
      } else {
        printf("job %s (%s) on %s: %s", r.value("id", "").c_str(), r.value("job", "").c_str(), o_.node.c_str(),
               state.c_str());
        if (r.contains("exit_status")) printf(", exit status %d", status);
        printf("\n  submitted %s by %s, started %s, ended %s\n", fmt_time(r.value("submitted", 0.0)).c_str(),
               r.value("from", "").c_str(), fmt_time(r.value("started", 0.0)).c_str(),
               fmt_time(r.value("ended", 0.0)).c_str());
        if (r.contains("error")) printf("  error: %s\n", r["error"].get<std::string>().c_str());
        if (type == "cancel")
          printf("  %s\n", state == "running"     ? "cancelling: SIGTERM sent to its process group"
                           : state == "cancelled" ? "cancelled"
                                                  : "not running: nothing to cancel");
      }
      return exit_with(kExitOk);
    }
    if (type == "duplicate") not_ours_ = true;  // an earlier submission's job: never cancel it
    if (type == "duplicate" && (state == "queued" || state == "running"))
      return (void)fail("job id " + id_ + " is already " + state + " on " + o_.node + " (jsd-submit --status " + id_ +
                        " " + o_.node + ")");
    if (type == "duplicate" && !o_.quiet)
      fprintf(stderr, "jsd-submit: %s: job id %s already ran there; not run again\n", o_.node.c_str(), id_.c_str());
    if (state == "failed")
      fprintf(stderr, "jsd-submit: %s: %s\n", o_.node.c_str(), r.value("error", "the job could not start").c_str());
    else if (state == "timeout" && !o_.quiet)
      fprintf(stderr, "jsd-submit: %s: job %s ended by its timeout_s\n", o_.node.c_str(), id_.c_str());
    else if (r.contains("signal") && !o_.quiet && !interrupted_)
      fprintf(stderr, "jsd-submit: %s: job %s killed by signal %d\n", o_.node.c_str(), id_.c_str(),
              r.value("signal", 0));
    if (o_.json) {
      json out = {{"id", id_},
                  {"node", o_.node},
                  {"job", r.value("job", job_name())},
                  {"state", state},
                  {"exit_status", status},
                  {"submitted", r.value("submitted", submitted_)},
                  {"started", r.value("started", 0.0)},
                  {"ended", r.value("ended", 0.0)},
                  {"duration_s", r.value("duration_s", 0.0)},
                  {"wall_s", wall_time() - submitted_},
                  {"duplicate", type == "duplicate"}};
      if (r.contains("exit_code")) out["exit_code"] = r["exit_code"];
      if (r.contains("signal")) out["signal"] = r["signal"];
      if (r.contains("error")) out["error"] = r["error"];
      std::cout << dump_json(out) << std::endl;
    }
    exit_with(interrupted_ ? exit_for_signal(interrupted_) : status);
  }

  uv_loop_t* loop_;
  const SubmitOptions& o_;
  Stream* s_ = nullptr;
  static constexpr uint64_t kWatchMs = 15000;
  Timer timer_, grace_, watchdog_{loop_};
  std::unique_ptr<Signal> sig_int_, sig_term_, sig_hup_;
  std::string id_, last_note_;
  double submitted_ = 0, started_ = 0;
  bool done_ = false, cancel_sent_ = false, queued_ = false, not_ours_ = false;
  uint64_t last_rx_ms_ = 0;
  int interrupted_ = 0;
  int code_ = kExitJsdFailure;
};

}  // namespace

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
  return with_loop([&](uv_loop_t* loop) { return Submitter(loop, o).run(); }, kExitJsdFailure);
}

}  // namespace jsd
