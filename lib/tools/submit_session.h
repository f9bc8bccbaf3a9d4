// What every mode of jsd-submit shares: the control stream to the local
// listener, the calls sent on it, the signals it watches, and leaving with
// an exit status once what it sent (a cancel, a withdraw) has been flushed.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "control_msg.h"
#include "submit.h"
#include "uvx.h"

namespace jsd {

class SubmitSession {
 public:
  SubmitSession(uv_loop_t* loop, const SubmitOptions& o) : loop_(loop), o_(o), timer_(loop) {}
  virtual ~SubmitSession() = default;
  SubmitSession(const SubmitSession&) = delete;
  SubmitSession& operator=(const SubmitSession&) = delete;

 protected:
  // Connects to the listener and watches the signals; false with err.
  bool open(std::string& err);
  // Connects to the listener (again, after it restarted); false with err.
  bool connect(std::string& err);
  bool send_msg(const ControlMsg& m);  // false: the listener is gone
  void send_call(uint64_t id, const nlohmann::json& body, bool durable);
  // jsd failed and nothing of ours waits anywhere: one line, and 255.
  int fail(const std::string& why);
  void exit_with(int code);

  virtual void on_msg(std::string_view p) = 0;
  virtual void on_lost() = 0;  // the listener closed the stream
  virtual void interrupted(int sig) = 0;
  virtual void on_exit() {}  // stops the subclass's own timers

  uv_loop_t* loop_;
  const SubmitOptions& o_;
  Stream* s_ = nullptr;
  Timer timer_;  // --timeout
  bool done_ = false;
  int code_ = 255;

 private:
  std::unique_ptr<Signal> sig_int_, sig_term_, sig_hup_;
};

}  // namespace jsd
