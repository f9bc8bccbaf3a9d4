// jsd-submit -i: this process's standard input, read once and sent to the
// job on one node or on every node of a target set (the same bytes to
// each), as chunks to their "job.stdin" objects (job_input.h). Reading
// pauses while any node has kInputWindow bytes unacknowledged: a job that
// does not read makes its submitter wait, never buffer. A regular file is
// read in turns on the loop, anything else (a pipe, a socket, a terminal)
// through the loop's polling.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "job_input.h"

namespace jsd {

class Stream;
class Timer;

class StdinFeed {
 public:
  // send: one "job.stdin" event body to node (false: it could not go).
  using SendFn = std::function<bool(const std::string& node, const std::string& body)>;
  StdinFeed(uv_loop_t* loop, int fd, SendFn send);
  ~StdinFeed();
  StdinFeed(const StdinFeed&) = delete;
  StdinFeed& operator=(const StdinFeed&) = delete;

  // Job id on node will take the input. Reading starts at start().
  void add(const std::string& node, const std::string& id);
  // Starts reading (every node added); false with err when fd cannot be read.
  bool start(std::string& err);
  // node acknowledged (job_input.h); a closed one is done with its input.
  void on_ack(const std::string& node, const InputAck& a);
  void on_ack(const std::string& node, std::string_view body);  // its text (a malformed one: ignored)
  // node's input is cut (why goes to its node, which stops the job).
  void cut(const std::string& node, const std::string& why);
  // node's job ended (or failed): it takes no more.
  void drop(const std::string& node);
  // node still takes input (added, its end not acknowledged, not cut or dropped).
  bool in_progress(const std::string& node) const;
  bool has(const std::string& node) const { return nodes_.count(node) > 0; }
  uint64_t acked(const std::string& node) const;
  uint64_t read_bytes() const { return read_; }
  // Called when stdin could not be read (why): the caller cuts its nodes.
  std::function<void(const std::string& why)> on_error;

 private:
  struct Node {
    std::string id;
    uint64_t acked = 0;
    bool eof_sent = false, closed = false, cut = false, dropped = false;
    bool active() const { return !closed && !cut && !dropped; }
  };
  void data(std::string_view d);
  void at_end();
  void send_eof(Node& n, const std::string& node);
  bool full() const;
  void pace();
  void read_file();

  uv_loop_t* loop_;
  int fd_;
  SendFn send_;
  std::map<std::string, Node> nodes_;
  uint64_t read_ = 0;
  bool started_ = false, eof_ = false, file_ = false, paused_ = false;
  Stream* s_ = nullptr;          // a pipe, socket or terminal
  std::unique_ptr<Timer> turn_;  // a regular file: read in turns
};

}  // namespace jsd
