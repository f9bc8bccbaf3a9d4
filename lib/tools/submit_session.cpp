#include "submit_session.h"

#include <cstdio>

#include "control.h"
#include "exit_codes.h"

namespace jsd {

bool SubmitSession::open(std::string& err) {
  if (!connect(err)) return false;
  sig_int_ = std::make_unique<Signal>(loop_, SIGINT, [this] { interrupted(SIGINT); });
  sig_term_ = std::make_unique<Signal>(loop_, SIGTERM, [this] { interrupted(SIGTERM); });
  sig_hup_ = std::make_unique<Signal>(loop_, SIGHUP, [this] { interrupted(SIGHUP); });
  return true;
}

bool SubmitSession::connect(std::string& err) {
  s_ = open_control_stream(loop_, o_.cfg, err);
  if (!s_) return false;
  s_->on_frame = [this](std::string_view p) { on_msg(p); };
  s_->on_close = [this](const std::string&) {
    s_ = nullptr;
    if (!done_) on_lost();
  };
  s_->start(o_.cfg.max_frame + 4096);
  return true;
}

bool SubmitSession::send_msg(const ControlMsg& m) {
  if (!s_) return false;
  s_->send(encode_control(m));
  return true;
}

void SubmitSession::send_call(uint64_t id, const nlohmann::json& body, bool durable) {
  ControlMsg m;
  m.type = ControlType::send;
  m.ev.kind = Kind::call;
  m.ev.id = id;
  m.ev.to = o_.node;
  m.ev.object = "job";
  m.ev.body = dump_json(body);
  m.durable = durable;
  send_msg(m);
}

int SubmitSession::fail(const std::string& why) {
  if (!done_) fprintf(stderr, "jsd-submit: error: %s\n", why.c_str());
  exit_with(kExitJsdFailure);
  return kExitJsdFailure;
}

// The last thing we sent (a cancel, a withdraw) must reach the listener
// before we go.
void SubmitSession::exit_with(int code) {
  if (done_) return;
  code_ = code;
  done_ = true;
  timer_.stop();
  on_exit();
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

}  // namespace jsd
