// What every mode of jsd-submit shares, on one node or on a target set
// (fanout.h): the control channel to the local listener (a ControlSession,
// or the fake a test passes), the calls sent on it, the signals it tells,
// and leaving with an exit status once what was sent (a cancel, a
// withdraw) has been flushed.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "control_msg.h"
#include "control_session.h"
#include "submit.h"
#include "uvx.h"

namespace jsd {

class SubmitSession : private ControlEvents {
 public:
  // channel: null for the real control connection.
  SubmitSession(uv_loop_t* loop, const SubmitOptions& o, ControlChannel* channel = nullptr);
  virtual ~SubmitSession() = default;
  SubmitSession(const SubmitSession&) = delete;
  SubmitSession& operator=(const SubmitSession&) = delete;

 protected:
  // Connects to the listener and watches the signals; false with err.
  bool open(std::string& err) { return ch_.open(*this, err); }
  // Connects to the listener (again, after it restarted); false with err.
  bool connect(std::string& err) { return ch_.reconnect(err); }
  bool connected() const { return ch_.connected(); }
  bool send_msg(const ControlMsg& m) { return ch_.send_if_connected(m); }  // false: the listener is gone
  // A call to the job object of o_.node (of to, on a target set).
  void send_call(uint64_t id, const nlohmann::json& body, bool durable) { ch_.send_call(id, o_.node, body, durable); }
  void send_call(uint64_t id, const std::string& to, const nlohmann::json& body, bool durable) {
    ch_.send_call(id, to, body, durable);
  }
  // A chunk of our standard input to node to (stdin_feed.h).
  bool send_input(const std::string& to, const std::string& body) { return ch_.send_notify(to, "job.stdin", body); }
  // What is sent between these goes in one write (ControlChannel::hold).
  void hold_sends() { ch_.hold(); }
  void release_sends() { ch_.release(); }
  // jsd failed and nothing of ours waits anywhere: one line, and 255.
  int fail(const std::string& why);
  void exit_with(int code);

  virtual void on_msg(std::string_view p) = 0;
  virtual void on_lost() = 0;  // the listener closed the stream
  virtual void interrupted(int sig) = 0;
  virtual void on_exit() {}  // stops the subclass's own timers

  uv_loop_t* loop_;
  const SubmitOptions& o_;
  bool done_ = false;
  int code_ = 255;

 private:
  void channel_msg(std::string_view p) override {
    if (!done_) on_msg(p);
  }
  void channel_lost() override {
    if (!done_) on_lost();
  }
  void channel_signal(int sig) override {
    if (!done_) interrupted(sig);
  }

  std::unique_ptr<ControlSession> own_;  // when no channel was given
  ControlChannel& ch_;
};

// The call body of a submission of o's job (or command) with id, submitted
// at submitted (the node records it).
nlohmann::json submit_body(const SubmitOptions& o, const std::string& id, double submitted);

// How a give-up that settled as "not run" ended (submit_settle.h): the
// request was withdrawn, or the queued job was cancelled before it started.
const char* not_run_how(bool queued);

// Seconds as jsd-submit prints them ("2", "0.5").
std::string fmt_secs(double s);

}  // namespace jsd
