#include "uvx.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <random>

#include "log.h"

namespace jsd {

std::string uv_error(int rc) { return uv_strerror(rc); }

namespace detail {

namespace {
thread_local HandleBox* open_boxes = nullptr;
}

HandleBox::~HandleBox() = default;

void HandleBox::adopt(uv_handle_t* h) {
  h_ = h;
  h->data = this;
  next_ = open_boxes;
  if (next_) next_->prev_ = this;
  open_boxes = this;
}

void HandleBox::close_handle() {
  uv_closing_ = true;
  if (prev_)
    prev_->next_ = next_;
  else
    open_boxes = next_;
  if (next_) next_->prev_ = prev_;
  prev_ = next_ = nullptr;
  uv_close(h_, [](uv_handle_t* h) {
    auto* b = static_cast<HandleBox*>(h->data);
    b->uv_closed_ = true;
    if (b->released_) delete b;
  });
}

void HandleBox::release() {
  released_ = true;
  if (!h_ || uv_closed_) {
    delete this;  // never opened, or the loop closed it and is done with it
    return;
  }
  if (!uv_closing_) close_handle();
}

void HandleBox::close_all(uv_loop_t* loop) {
  for (HandleBox *b = open_boxes, *next; b; b = next) {
    next = b->next_;
    if (b->h_->loop == loop) b->close_handle();
  }
}

}  // namespace detail

Stream* Stream::tcp(uv_loop_t* loop) {
  auto* s = new Stream();
  s->is_tcp_ = true;
  int rc = uv_tcp_init(loop, &s->h_.tcp);
  if (rc != 0) {
    delete s;  // nothing to close: the loop never saw it
    return nullptr;
  }
  s->adopt(s->handle());
  return s;
}

Stream* Stream::pipe(uv_loop_t* loop) {
  auto* s = new Stream();
  int rc = uv_pipe_init(loop, &s->h_.pipe, 0);
  if (rc != 0) {
    delete s;
    return nullptr;
  }
  s->adopt(s->handle());
  return s;
}

Stream* Stream::open_fd(uv_loop_t* loop, int fd, std::string& err) {
  Stream* s = pipe(loop);
  int rc = !s ? UV_ENOMEM : is_socket(fd) ? uv_pipe_open(s->pipe_handle(), fd) : UV_ENOTSOCK;
  if (rc == 0) return s;
  err = "fd " + std::to_string(fd) + ": " + uv_error(rc);
  if (s) s->close();
  return nullptr;
}

void Stream::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* s = from<Stream>(h->data);
  // Resized here, between reads, where nothing points into the old buffer
  // (on_read copies what it keeps into the decoder).
  if (s->readbuf_want_ != s->readbuf_size_) {
    s->readbuf_ = std::make_unique<char[]>(s->readbuf_want_);
    s->readbuf_size_ = s->readbuf_want_;
  }
  *buf = uv_buf_init(s->readbuf_.get(), static_cast<unsigned>(s->readbuf_size_));
}

void Stream::on_read(uv_stream_t* st, ssize_t n, const uv_buf_t*) {
  auto* s = from<Stream>(st->data);
  if (n == 0 || s->closing_) return;
  if (n < 0) {
    s->close(n == UV_EOF ? "closed by peer" : uv_error(int(n)));
    return;
  }
  if (s->on_data) {
    s->on_data(std::string_view(s->readbuf_.get(), size_t(n)));
    return;
  }
  std::string_view in(s->readbuf_.get(), size_t(n));
  if (s->dec_.buffered() == 0) {
    // Nothing left over from the last read: hand out whole frames straight
    // from the read buffer and keep only an incomplete tail (one copy less
    // for every byte on every hop).
    while (!s->closing_ && !s->muted_ && in.size() >= kFrameHeader) {
      const auto* h = reinterpret_cast<const unsigned char*>(in.data());
      size_t len = (size_t(h[0]) << 24) | (size_t(h[1]) << 16) | (size_t(h[2]) << 8) | size_t(h[3]);
      if (len > s->dec_.max_frame()) {
        s->close("frame of " + std::to_string(len) + " bytes exceeds the limit");
        return;
      }
      if (in.size() - kFrameHeader < len) break;
      std::string_view payload = in.substr(kFrameHeader, len);
      in.remove_prefix(kFrameHeader + len);
      if (s->on_frame) s->on_frame(payload);
    }
    if (s->closing_ || s->muted_) return;
    if (in.empty()) {
      if (s->on_frames_done) s->on_frames_done();
      return;
    }
  }
  s->dec_.feed(in.data(), in.size());
  std::string_view payload;
  while (!s->closing_ && !s->muted_) {
    auto r = s->dec_.next(payload);
    if (r == FrameDecoder::Result::need_more) break;
    if (r == FrameDecoder::Result::too_large) {
      s->close("frame of " + std::to_string(s->dec_.announced()) + " bytes exceeds the limit");
      break;
    }
    if (s->on_frame) s->on_frame(payload);
  }
  if (!s->closing_ && s->on_frames_done) s->on_frames_done();
}

int Stream::start(size_t max_frame) {
  dec_ = FrameDecoder(max_frame);
  readbuf_want_ = std::clamp<size_t>(max_frame + kFrameHeader, 4096, 65536);
  return uv_read_start(stream(), on_alloc, on_read);
}

void Stream::set_max_frame(size_t max_frame) {
  dec_.set_max_frame(max_frame);
  readbuf_want_ = std::clamp<size_t>(max_frame + kFrameHeader, 4096, 65536);
}

void Stream::pause() {
  if (!live() || paused_) return;
  paused_ = true;
  uv_read_stop(stream());
}

void Stream::resume() {
  if (!live() || !paused_) return;
  paused_ = false;
  int rc = uv_read_start(stream(), on_alloc, on_read);
  if (rc != 0) close("cannot read: " + uv_error(rc));
}

int Stream::connect(const Endpoint& ep, std::function<void(int)> done) {
  struct sockaddr_storage ss {};
  int rc = uv_ip4_addr(ep.host.c_str(), ep.port, reinterpret_cast<sockaddr_in*>(&ss));
  if (rc != 0) rc = uv_ip6_addr(ep.host.c_str(), ep.port, reinterpret_cast<sockaddr_in6*>(&ss));
  if (rc != 0) return rc;
  if (!live()) return UV_EINVAL;
  connect_done_ = std::move(done);
  creq_.data = this;
  return uv_tcp_connect(&creq_, &h_.tcp, reinterpret_cast<sockaddr*>(&ss), [](uv_connect_t* req, int status) {
    auto* s = static_cast<Stream*>(req->data);
    auto fn = std::move(s->connect_done_);
    // The owner gave up on it already, or close_loop() cancelled the connect
    // (the owner may be gone).
    if (!s->live()) return;
    if (fn) fn(status);
  });
}

// uv_pipe_connect reports every failure through the callback.
int Stream::connect_unix(const std::string& path, std::function<void(int)> done) {
  if (!live()) return UV_EINVAL;
  connect_done_ = std::move(done);
  creq_.data = this;
  uv_pipe_connect(&creq_, &h_.pipe, path.c_str(), [](uv_connect_t* req, int status) {
    auto* s = static_cast<Stream*>(req->data);
    auto fn = std::move(s->connect_done_);
    if (!s->live()) return;
    if (fn) fn(status);
  });
  return 0;
}

void Stream::send(std::string_view payload) {
  if (!live()) return;
  append_frame(pending_, payload);
  if (!writing_) flush();
}

void Stream::send_raw(std::string_view bytes) {
  if (!live()) return;
  pending_.append(bytes);
  if (!writing_) flush();
}

void Stream::when_flushed(std::function<void()> fn) {
  if (!pending_.empty())
    flushed_waiters_.push_back(std::move(fn));
  else if (writing_)
    inflight_waiters_.push_back(std::move(fn));
  else
    fn();
}

// Writes are coalesced: while one is in flight, later frames collect in
// pending_ and leave together. (A uv_try_write fast path was measured and
// dropped: one syscall per event cut bulk notifications from 860k/s to
// 170k/s and did not shorten a round trip.)
void Stream::flush() {
  if (!live() || writing_ || pending_.empty()) return;
  inflight_.swap(pending_);
  pending_.clear();
  inflight_waiters_.swap(flushed_waiters_);
  flushed_waiters_.clear();
  uv_buf_t buf = uv_buf_init(inflight_.data(), unsigned(inflight_.size()));
  wreq_.data = this;
  int rc = uv_write(&wreq_, stream(), &buf, 1, on_write);
  if (rc != 0) {
    inflight_.clear();
    close("write failed: " + uv_error(rc));
    return;
  }
  writing_ = true;
}

void Stream::on_write(uv_write_t* req, int status) {
  auto* s = static_cast<Stream*>(req->data);
  s->writing_ = false;
  s->inflight_.clear();
  auto waiters = std::move(s->inflight_waiters_);
  s->inflight_waiters_.clear();
  // A write cancelled by close_loop() must not call on_close: the owner may
  // be gone.
  if (status != 0) {
    if (s->live()) s->close("write failed: " + uv_error(status));
    return;
  }
  if (!s->live()) return;
  for (auto& w : waiters) w();
  s->flush();
}

int Stream::listen(int backlog, std::function<void(int)> on_connection) {
  if (!live()) return UV_EINVAL;
  on_connection_ = std::move(on_connection);
  return uv_listen(stream(), backlog, [](uv_stream_t* st, int status) {
    auto* s = from<Stream>(st->data);
    // The callback may close this Stream: it stays alive until the close
    // callback, and nothing here touches it afterwards.
    if (s->live() && s->on_connection_) s->on_connection_(status);
  });
}

int Stream::accept(Stream* client) {
  if (!live() || !client || !client->live()) return UV_EINVAL;
  return uv_accept(stream(), client->stream());
}

void Stream::close(const std::string& why) {
  if (closing_) return;
  closing_ = true;
  // on_frame may be the caller right now: it stays alive until the close
  // callback frees the Stream, and closing_ keeps it from being called.
  // After close_loop() nothing is on the stack and release() frees it at
  // once, hence on_close first.
  auto cb = std::move(on_close);
  on_close = nullptr;
  if (cb) cb(why);
  release();
}

std::string Stream::peer_name() {
  if (!is_tcp_) return "local";
  struct sockaddr_storage ss {};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&h_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(a, host, sizeof host);
    port = ntohs(a->sin_port);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

struct Timer::Box : detail::HandleBox {
  using HandleBox::adopt;
  using HandleBox::from;
  using HandleBox::release;
  uv_timer_t t;
  std::function<void()> fn;
};

Timer::Timer(uv_loop_t* loop) : box_(new Box) {
  // Cannot fail on Unix (it only links the handle into the loop); if it
  // ever did, the timer stays closed and start() says so.
  if (uv_timer_init(loop, &box_->t) == 0) box_->adopt(reinterpret_cast<uv_handle_t*>(&box_->t));
}

Timer::~Timer() {
  if (box_->is_open()) uv_timer_stop(&box_->t);
  box_->fn = nullptr;
  box_->release();
}

int Timer::start(uint64_t ms, std::function<void()> fn, uint64_t repeat_ms) {
  if (!box_->is_open()) return UV_EINVAL;
  box_->fn = std::move(fn);
  return uv_timer_start(
      &box_->t,
      [](uv_timer_t* t) {
        auto* b = Box::from<Box>(t->data);
        // Copy: the callback may restart the timer and replace fn, or
        // destroy the Timer.
        auto cb = b->fn;
        if (cb) cb();
      },
      ms, repeat_ms);
}

void Timer::stop() {
  if (box_->is_open()) uv_timer_stop(&box_->t);
}
void Timer::weak() {
  if (box_->is_open()) uv_unref(reinterpret_cast<uv_handle_t*>(&box_->t));
}
bool Timer::active() const { return box_->is_open() && uv_is_active(reinterpret_cast<const uv_handle_t*>(&box_->t)); }

int Deadline::start(uint64_t ms, std::function<void()> fn) {
  fn_ = std::move(fn);
  due_ = uv_now(loop_) + ms;
  return t_.start(ms, [this] {
    if (uv_now(loop_) > due_ + kLateMs) {
      t_.start(1, [this] { fire(); });  // late: read what waits first
      return;
    }
    fire();
  });
}

void Deadline::fire() {
  auto cb = fn_;  // a copy: fn may destroy this Deadline
  if (cb) cb();
}

struct Signal::Box : detail::HandleBox {
  using HandleBox::adopt;
  using HandleBox::from;
  using HandleBox::release;
  uv_signal_t s;
  std::function<void()> fn;
};

Signal::Signal(uv_loop_t* loop, int signum, std::function<void()> fn) : box_(new Box) {
  box_->fn = std::move(fn);
  int rc = uv_signal_init(loop, &box_->s);  // fails if no descriptor is left
  if (rc == 0) {
    box_->adopt(reinterpret_cast<uv_handle_t*>(&box_->s));
    rc = uv_signal_start(
        &box_->s, [](uv_signal_t* s, int) { Box::from<Box>(s->data)->fn(); }, signum);
    // Signal handles must not keep the loop alive on their own.
    uv_unref(reinterpret_cast<uv_handle_t*>(&box_->s));
  }
  if (rc != 0) {
    error_ = rc;
    log_error("cannot watch signal " + std::to_string(signum) + ": " + uv_error(rc));
  }
}

Signal::~Signal() {
  if (box_->is_open()) uv_signal_stop(&box_->s);
  box_->fn = nullptr;
  box_->release();
}

int with_loop(const std::function<int(uv_loop_t*)>& fn, int loop_failure) {
  signal(SIGPIPE, SIG_IGN);  // a peer that goes away is an error code, not a death
  uv_loop_t loop;
  int rc = uv_loop_init(&loop);
  if (rc != 0) {
    fprintf(stderr, "jsd: error: cannot start an event loop: %s\n", uv_strerror(rc));
    return loop_failure;
  }
  rc = fn(&loop);
  close_loop(&loop);
  return rc;
}

int close_loop(uv_loop_t* loop) {
  detail::HandleBox::close_all(loop);
  // What is left is not ours (a listening socket of the node, say): its
  // owner frees it.
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

std::string self_dir() {
  char buf[4096];
  size_t n = sizeof buf;
  if (uv_exepath(buf, &n) != 0) return ".";
  std::string s(buf, n);
  auto slash = s.rfind('/');
  return slash == std::string::npos ? "." : s.substr(0, slash);
}

uint64_t now_ms() { return uv_hrtime() / 1000000; }

double wall_time() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  return double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
}

std::string iso_time(double t) {
  time_t s = time_t(t);
  struct tm tm;
  gmtime_r(&s, &tm);
  char b[64];
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[16];
  snprintf(ms, sizeof ms, ".%03dZ", int((t - double(s)) * 1000));
  return std::string(b) + ms;
}

}  // namespace jsd
