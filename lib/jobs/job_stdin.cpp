#include "job_stdin.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log.h"
#include "uvx.h"

namespace jsd {

RunInput::RunInput(std::unique_ptr<JobInput> in, std::function<void(const InputAck&)> ack,
                   std::function<void(const std::string&)> cut)
    : in_(std::move(in)), ack_(std::move(ack)), cut_(std::move(cut)) {
  in_->flushed = [this](uint64_t taken) {
    if (over_ && !eof_) return;
    if (eof_ && taken == next_) over_ = true;
    ack_({taken, eof_ && taken == next_});
  };
  // The job closed its stdin (or ended): nothing more goes in, and the
  // submitter hears that it may stop reading (as ssh stops when the remote
  // command closes its input).
  in_->failed = [this](const std::string&) {
    if (over_) return;
    over_ = true;
    ack_({next_, true});
  };
}

void RunInput::do_cut(const std::string& why) {
  if (over_) return;
  over_ = true;
  in_.reset();  // what was not written goes: the job must not read a part
  cut_(why);
}

void RunInput::chunk(const InputChunk& c) {
  if (over_) return;
  if (c.cut()) return do_cut(c.data.empty() ? "its submitter cut it" : printable(c.data, 200));
  if (eof_) return;  // a copy of what came before the end
  if (c.offset > next_)
    return do_cut("bytes " + std::to_string(next_) + " to " + std::to_string(c.offset) + " never arrived");
  uint64_t skip = next_ - c.offset;  // sent again (a resent event): each byte once
  if (skip < c.data.size()) {
    std::string_view fresh = c.data.substr(size_t(skip));
    next_ += fresh.size();
    in_->write(fresh);
  }
  // A sender that ignores the window would make this node buffer for it.
  if (in_->pending() > kInputWindow + kInputChunk)
    return do_cut("its submitter sent more than " + std::to_string(kInputWindow >> 20) +
                  " MiB beyond what the job took");
  if (c.eof()) {
    eof_ = true;
    in_->close();
  }
}

namespace {

class FifoInput : public JobInput {
 public:
  FifoInput(Stream* s, std::function<void()> done) : s_(s), done_(std::move(done)) {
    s_->on_close = [this](const std::string& why) {
      s_ = nullptr;
      if (!closed_ && failed) failed(why.empty() ? "closed" : why);
    };
  }
  ~FifoInput() override {
    if (s_) s_->discard();
  }
  void write(std::string_view data) override {
    if (!s_ || closed_) return;
    queued_ += data.size();
    s_->send_raw(data);
    s_->when_flushed([this, q = queued_] {
      if (q <= taken_) return;
      taken_ = q;
      if (flushed) flushed(q);
    });
  }
  void close() override {
    if (!s_ || closed_) return;
    closed_ = true;
    s_->when_flushed([this] {
      if (s_) s_->discard();
      s_ = nullptr;
      if (done_) done_();
      if (flushed) flushed(taken_);  // the end, acknowledged
    });
  }
  size_t pending() const override { return size_t(queued_ - taken_); }

 private:
  Stream* s_;
  std::function<void()> done_;
  uint64_t queued_ = 0, taken_ = 0;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<JobInput> open_fifo_input(uv_loop_t* loop, const std::string& path, std::function<void()> done,
                                          std::string& err) {
  // Non-blocking: the job (and its supervisor) hold the FIFO open, so this
  // fails (ENXIO) only when the job is gone.
  int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    err = path + ": " + strerror(errno);
    return nullptr;
  }
  Stream* s = Stream::pipe(loop);
  int rc = s ? uv_pipe_open(s->pipe_handle(), fd) : UV_ENOMEM;
  if (rc != 0) {
    err = path + ": " + uv_error(rc);
    if (s) s->discard();
    ::close(fd);
    return nullptr;
  }
  return std::make_unique<FifoInput>(s, std::move(done));
}

}  // namespace jsd
