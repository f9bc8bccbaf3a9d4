#include "control_session.h"

#include <csignal>

#include "control.h"
#include "event.h"
#include "frame.h"
#include "uvx.h"

namespace jsd {

bool ControlChannel::send_call(uint64_t id, const std::string& to, const nlohmann::json& body, bool durable) {
  ControlMsg m;
  m.type = ControlType::send;
  m.ev.kind = Kind::call;
  m.ev.id = id;
  m.ev.to = to;
  m.ev.object = "job";
  m.ev.body = dump_json(body);
  m.durable = durable;
  return send_if_connected(m);
}

bool ControlChannel::send_notify(const std::string& to, const std::string& object, const std::string& body) {
  ControlMsg m;
  m.type = ControlType::send;
  m.ev.kind = Kind::notify;
  m.ev.to = to;
  m.ev.object = object;
  m.ev.body = body;
  return send_if_connected(m);
}

bool ControlChannel::send_if_connected(const ControlMsg& m) {
  if (!connected()) return false;
  send(m);
  return true;
}

ControlSession::ControlSession(uv_loop_t* loop, const Config& cfg) : loop_(loop), cfg_(cfg) {}

ControlSession::~ControlSession() {
  if (s_) s_->discard();
}

bool ControlSession::open(ControlEvents& ev, std::string& err) {
  ev_ = &ev;
  if (!reconnect(err)) return false;
  sig_int_ = std::make_unique<Signal>(loop_, SIGINT, [this] { ev_->channel_signal(SIGINT); });
  sig_term_ = std::make_unique<Signal>(loop_, SIGTERM, [this] { ev_->channel_signal(SIGTERM); });
  sig_hup_ = std::make_unique<Signal>(loop_, SIGHUP, [this] { ev_->channel_signal(SIGHUP); });
  return true;
}

bool ControlSession::reconnect(std::string& err) {
  s_ = open_control_stream(loop_, cfg_, err);
  if (!s_) return false;
  s_->on_frame = [this](std::string_view p) { ev_->channel_msg(p); };
  s_->on_close = [this](const std::string&) {
    s_ = nullptr;
    ev_->channel_lost();
  };
  s_->start(cfg_.max_frame + kControlSlack);
  return true;
}

void ControlSession::send(const ControlMsg& m) {
  if (!s_) return;
  if (held_ > 0) return append_frame(kept_, encode_control(m));
  s_->send(encode_control(m));
}

void ControlSession::release() {
  if (held_ > 0 && --held_ > 0) return;
  std::string kept = std::move(kept_);
  kept_.clear();
  if (s_ && !kept.empty()) s_->send_raw(kept);
}

void ControlSession::close() {
  held_ = 1;
  release();  // what was kept goes before the connection closes
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
