// A submitter's control connection to its local listener, and the seam it
// is used through: the one-node submitter and the fan-out (submit_session.h)
// send their calls and hear their answers and signals through a
// ControlChannel; ControlSession is the real one (a Stream on the control
// socket, SIGINT/SIGTERM/SIGHUP watched), a test passes a fake.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "config.h"
#include "control_msg.h"

namespace jsd {

class Signal;
class Stream;

// What a channel tells its user.
class ControlEvents {
 public:
  virtual void channel_msg(std::string_view payload) = 0;  // a message from the listener
  virtual void channel_lost() = 0;                         // the listener closed the stream
  virtual void channel_signal(int sig) = 0;                // SIGINT, SIGTERM or SIGHUP
 protected:
  ~ControlEvents() = default;
};

class ControlChannel {
 public:
  virtual ~ControlChannel() = default;
  // Connects to the listener and starts telling ev (signals included);
  // false with err.
  virtual bool open(ControlEvents& ev, std::string& err) = 0;
  // Connects again after the listener went (it restarted); false with err.
  virtual bool reconnect(std::string& err) = 0;
  virtual bool connected() const = 0;
  virtual void send(const ControlMsg& m) = 0;  // only while connected()
  // Tells nothing more; what was sent reaches the listener before the
  // connection closes (a last cancel, a withdraw).
  virtual void close() = 0;
  // Between hold() and release() what is sent is kept, and then written at
  // once: a fan-out's window reaches the listener in one read, so that its
  // requests through one gateway go as one bundle (relay.h).
  virtual void hold() {}
  virtual void release() {}

  // A call to the job object of node to, with our id for its answers;
  // false: the listener is gone. durable: on this node's disk before it is
  // sent, delivered after a restart of this node.
  bool send_call(uint64_t id, const std::string& to, const nlohmann::json& body, bool durable);
  // A notify to object of node to (a chunk of a job's input: job_input.h).
  bool send_notify(const std::string& to, const std::string& object, const std::string& body);
  // m, if connected (false: the listener is gone).
  bool send_if_connected(const ControlMsg& m);
};

class ControlSession final : public ControlChannel {
 public:
  ControlSession(uv_loop_t* loop, const Config& cfg);
  ~ControlSession() override;
  bool open(ControlEvents& ev, std::string& err) override;
  bool reconnect(std::string& err) override;
  bool connected() const override { return s_ != nullptr; }
  void send(const ControlMsg& m) override;
  void close() override;
  void hold() override { ++held_; }
  void release() override;

 private:
  int held_ = 0;
  std::string kept_;  // framed messages sent while held
  uv_loop_t* loop_;
  const Config& cfg_;
  ControlEvents* ev_ = nullptr;
  Stream* s_ = nullptr;
  std::unique_ptr<Signal> sig_int_, sig_term_, sig_hup_;
};

}  // namespace jsd
