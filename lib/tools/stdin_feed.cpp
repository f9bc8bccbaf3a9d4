#include "stdin_feed.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uvx.h"

namespace jsd {

StdinFeed::StdinFeed(uv_loop_t* loop, int fd, SendFn send) : loop_(loop), fd_(fd), send_(std::move(send)) {}

StdinFeed::~StdinFeed() {
  if (s_) s_->discard();
}

void StdinFeed::add(const std::string& node, const std::string& id) { nodes_[node].id = id; }

bool StdinFeed::start(std::string& err) {
  if (started_) return true;
  started_ = true;
  if (uv_guess_handle(fd_) == UV_FILE) {
    file_ = true;
    turn_ = std::make_unique<Timer>(loop_);
    pace();
    return true;
  }
  s_ = Stream::pipe(loop_);
  int rc = s_ ? uv_pipe_open(s_->pipe_handle(), fd_) : UV_ENOMEM;
  if (rc == 0) {
    s_->on_data = [this](std::string_view d) { data(d); };
    s_->on_close = [this](const std::string& why) {
      s_ = nullptr;
      if (why == "closed by peer") return at_end();
      eof_ = true;
      if (on_error) on_error("cannot read standard input: " + why);
    };
    rc = s_->start(kInputChunk);
  }
  if (rc != 0) {
    err = "cannot read standard input: " + uv_error(rc);
    if (s_) s_->discard();
    s_ = nullptr;
    return false;
  }
  pace();
  return true;
}

bool StdinFeed::full() const {
  for (auto& [node, n] : nodes_)
    if (n.active() && read_ - n.acked >= kInputWindow) return true;
  return false;
}

// Reads while every node has room; pauses otherwise (an ack resumes).
void StdinFeed::pace() {
  if (!started_ || eof_) return;
  bool stop = full();
  bool anyone = false;
  for (auto& [node, n] : nodes_) anyone = anyone || n.active();
  if (!anyone) stop = true;  // nobody takes input any more: leave it unread
  paused_ = stop;
  if (file_) {
    if (!stop && !turn_->active()) turn_->start(0, [this] { read_file(); });
    return;
  }
  if (!s_) return;
  if (stop)
    s_->pause();
  else
    s_->resume();
}

void StdinFeed::read_file() {
  static char buf[kInputChunk];
  // A few chunks a turn: the loop also carries the acks and the output.
  for (int i = 0; i < 8 && !eof_ && !full(); ++i) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      eof_ = true;
      if (on_error) on_error(std::string("cannot read standard input: ") + strerror(errno));
      return;
    }
    if (n == 0) return at_end();
    data(std::string_view(buf, size_t(n)));
  }
  pace();
}

void StdinFeed::data(std::string_view d) {
  while (!d.empty()) {
    std::string_view part = d.substr(0, kInputChunk);
    for (auto& [node, n] : nodes_)
      if (n.active()) send_(node, encode_input_chunk(n.id, read_, part));
    read_ += part.size();
    d.remove_prefix(part.size());
  }
  if (!file_) pace();
}

void StdinFeed::at_end() {
  eof_ = true;
  for (auto& [node, n] : nodes_)
    if (n.active()) send_eof(n, node);
}

void StdinFeed::send_eof(Node& n, const std::string& node) {
  if (n.eof_sent) return;
  n.eof_sent = true;
  send_(node, encode_input_chunk(n.id, read_, {}, InputChunk::kEof));
}

void StdinFeed::on_ack(const std::string& node, const InputAck& a) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  Node& n = it->second;
  if (a.acked > n.acked && a.acked <= read_) n.acked = a.acked;
  if (a.closed) n.closed = true;  // all of it taken, or the job closed its stdin
  pace();
}

void StdinFeed::on_ack(const std::string& node, std::string_view body) {
  InputAck a;
  if (decode_input_ack(body, a)) on_ack(node, a);
}

void StdinFeed::cut(const std::string& node, const std::string& why) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || !it->second.active()) return;
  it->second.cut = true;
  send_(node, encode_input_chunk(it->second.id, read_, why, InputChunk::kCut));
  pace();
}

void StdinFeed::drop(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  it->second.dropped = true;
  pace();
}

bool StdinFeed::in_progress(const std::string& node) const {
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second.active();
}

uint64_t StdinFeed::acked(const std::string& node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? 0 : it->second.acked;
}

}  // namespace jsd
