// The one-node jsd-submit (submit.h), in two parts: its session with the
// local listener (submit.cpp: the call, the answers and output it follows,
// its input, joining the job again after a lost listener or link, signals)
// and how it ends (submit_end.cpp: a give-up settled so that 255 promises
// the job did not run, a record's exit status, --no-wait's queued answer,
// the watchdog that asks for a lost end confirmation).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "control_msg.h"
#include "exit_codes.h"
#include "stdin_feed.h"
#include "submit.h"
#include "submit_session.h"
#include "submit_settle.h"
#include "uvx.h"

namespace jsd {

class Submitter : public SubmitSession {
 public:
  Submitter(uv_loop_t* loop, const SubmitOptions& o, ControlChannel* channel)
      : SubmitSession(loop, o, channel), grace_(loop), settle_(loop) {}

  int run();

 private:
  using json = nlohmann::json;
  // Our calls' ids on the control socket; re-attaches count up from
  // kAttachId.
  static constexpr uint64_t kCallId = 1, kCancelId = 2, kWatchId = 3, kAttachId = 16;

  // The session (submit.cpp).
  nlohmann::json attach_body() const;
  void reattach();
  void print_output(int fd, std::string_view d);
  void cut_input(const std::string& why);
  void on_lost() override;
  void on_exit() override;
  void interrupted(int sig) override;
  void on_msg(std::string_view p) override;
  void on_control(const ControlMsg& m);
  void on_started(const json& j);
  void on_attached(const json& j);
  std::string job_name() const { return o_.argv.empty() ? o_.job : "(adhoc)"; }

  // How it ends (submit_end.cpp).
  void send_cancel();
  bool ours_in_flight() const;
  void give_up(const std::string& why, int code);
  void stored_unknown(const std::string& why);
  void still_queued(const std::string& why);
  void not_run();
  void outcome_unknown();
  void start_watchdog();
  void on_watchdog(const std::string& body);
  void await_acceptance();
  void queued(const std::string& state);
  void on_record(const std::string& type, const json& r);

  static constexpr uint64_t kWatchMs = 15000, kReconnectMs = 50;
  static constexpr double kAcceptWaitS = 10;  // --no-wait: the longest wait for an up link's answer
  Timer timer_{loop_};                        // --timeout
  Timer grace_, watchdog_{loop_}, reconnect_{loop_}, accept_wait_{loop_};
  json body_;  // the call as first sent
  bool lost_listener_ = false;
  Settle settle_;
  std::unique_ptr<StdinFeed> feed_;   // -i
  std::string input_cut_;             // why our input was cut
  std::string id_, last_note_, why_;  // why_: why we gave up
  int give_up_code_ = kExitJsdFailure;
  double submitted_ = 0, started_ = 0;
  bool cancel_sent_ = false, queued_ = false, not_ours_ = false;
  bool stored_ = false;  // --no-wait: the listener said it is in its outbox
  bool attached_ = false, attach_answered_ = false;
  uint64_t live_call_ = kCallId;  // the call whose output and end we follow
  uint64_t printed_[2] = {0, 0};  // bytes of stdout, stderr printed
  uint64_t last_rx_ms_ = 0;
  int interrupted_ = 0;
};

}  // namespace jsd
