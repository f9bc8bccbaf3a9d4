// A fake of the control channel (lib/tools/control_session.h), the seam
// through which jsd-submit on one node (submit_test.cpp) and on a target set
// (fanout_test.cpp) talk to their listener: it records what the submitter
// sends and answers each message with what the test's script gives, on the
// next loop turn, in order.
#pragma once

#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control_session.h"
#include "event.h"
#include "uvx.h"

namespace jsd::fake {

class ControlListener : public ControlChannel {
 public:
  // The answers to m, each an encoded control message (reply(), or
  // encode_control()), or kLose: the listener goes there (killed), the
  // stream closes and nothing more is delivered.
  using Script = std::function<std::vector<std::string>(const ControlMsg& m)>;
  static constexpr const char* kLose = "lose";

  ControlListener(uv_loop_t* loop, Script script) : timer_(loop), script_(std::move(script)) {}

  bool open(ControlEvents& ev, std::string&) override {
    ev_ = &ev;
    connected_ = true;
    return true;
  }
  bool reconnect(std::string& err) override {
    err = "the fake listener does not come back";
    return false;
  }
  bool connected() const override { return connected_; }
  void send(const ControlMsg& m) override {
    sent.push_back(m);
    for (auto& p : script_(m)) pending_.push_back(std::move(p));
    timer_.start(0, [this] { deliver(); });
  }
  void close() override {
    connected_ = false;
    closed = true;
    timer_.stop();
  }

  // A reply to call id: a chunk of the job's stdout ({"stdout": "..."}), or
  // a job reply (a start, an end record: the call is over with "ended").
  static std::string reply(uint64_t id, const nlohmann::json& a) {
    ControlMsg r;
    r.type = ControlType::reply;
    r.ev.kind = Kind::reply;
    r.ev.id = id;
    r.ev.object = a.contains("stdout") ? "job.stdout" : "job";
    r.ev.body = a.contains("stdout") ? a["stdout"].get<std::string>() : a.dump();
    r.ev.more = !(a.contains("type") && a["type"] == "ended");
    return encode_control(r);
  }

  std::vector<ControlMsg> sent;
  bool closed = false;

 private:
  void deliver() {
    while (!pending_.empty() && connected_) {
      std::string p = std::move(pending_.front());
      pending_.pop_front();
      if (p == kLose) {
        connected_ = false;
        pending_.clear();
        return ev_->channel_lost();
      }
      ev_->channel_msg(p);
    }
  }
  Timer timer_;
  Script script_;
  ControlEvents* ev_ = nullptr;
  bool connected_ = false;
  std::deque<std::string> pending_;
};

}  // namespace jsd::fake
