// libuv plumbing with one owner per handle.
//
// Handles live on the heap next to their callbacks and are freed only in
// their close callback, so an owner may drop its pointer (close()) at any
// moment, even from inside one of the handle's own callbacks.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "frame.h"

namespace jsd {

std::string uv_error(int rc);

// A length-prefixed frame stream over TCP or a Unix socket.
class Stream {
 public:
  static Stream* tcp(uv_loop_t* loop);
  static Stream* pipe(uv_loop_t* loop);
  // A Stream on an inherited or already connected Unix socket; null (with
  // err) if fd is not a socket.
  static Stream* open_fd(uv_loop_t* loop, int fd, std::string& err);
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h_); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&h_); }
  uv_tcp_t* tcp_handle() { return &h_.tcp; }
  uv_pipe_t* pipe_handle() { return &h_.pipe; }

  // Called for every complete frame. May call close().
  std::function<void(std::string_view payload)> on_frame;
  // Called after the frames of one read were delivered (to flush batches).
  std::function<void()> on_frames_done;
  // If set, raw bytes are delivered here instead of frames (a job's output).
  std::function<void(std::string_view bytes)> on_data;
  // Called exactly once when the stream closes, with the reason ("" when the
  // owner closed it). The object is freed after this returns, later.
  std::function<void(const std::string& why)> on_close;

  int start(size_t max_frame = kDefaultMaxFrame);
  // Stop and resume reading (backpressure); frames already read stay.
  void pause();
  void resume();
  bool paused() const { return paused_; }
  int connect(const Endpoint& ep, std::function<void(int status)> done);
  int connect_unix(const std::string& path, std::function<void(int status)> done);
  // Frames payload and queues it; writes are coalesced while one is in flight.
  void send(std::string_view payload);
  // Queues bytes that are already framed.
  void send_raw(std::string_view bytes);
  // Called once all queued bytes reached the kernel (for acks that promise
  // the next hop has the data).
  void when_flushed(std::function<void()> fn);
  void close(const std::string& why = "");
  // Closes without calling on_close: for an owner that is done with it.
  void discard() {
    on_close = nullptr;
    close();
  }
  bool closing() const { return closing_; }
  // Stops delivering frames (the owner is done reading) without closing.
  void mute() { muted_ = true; }
  size_t pending_bytes() const { return inflight_.size() + pending_.size(); }
  std::string peer_name();

 private:
  Stream() = default;
  void flush();
  static void on_alloc(uv_handle_t*, size_t, uv_buf_t*);
  static void on_read(uv_stream_t*, ssize_t, const uv_buf_t*);
  static void on_write(uv_write_t*, int);

  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h_;
  bool is_tcp_ = false;
  bool closing_ = false;
  bool muted_ = false;
  bool paused_ = false;
  bool writing_ = false;
  FrameDecoder dec_;
  // Sized by start(): a connection that has not authenticated yet reads
  // into a few KiB, not 64 (thousands of them may be open at once).
  std::unique_ptr<char[]> readbuf_;
  size_t readbuf_size_ = 0;
  std::string inflight_, pending_;
  uv_write_t wreq_;
  std::vector<std::function<void()>> flushed_waiters_, inflight_waiters_;
  uv_connect_t creq_;
  std::function<void(int)> connect_done_;
};

class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void start(uint64_t ms, std::function<void()> fn, uint64_t repeat_ms = 0);
  void stop();
  bool active() const;

 private:
  struct Box {
    uv_timer_t t;
    std::function<void()> fn;
  };
  Box* box_;
};

class Signal {
 public:
  Signal(uv_loop_t* loop, int signum, std::function<void()> fn);
  ~Signal();
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;

 private:
  struct Box {
    uv_signal_t s;
    std::function<void()> fn;
  };
  Box* box_;
};

// A child process. fds[i] becomes the child's fd i: an fd to inherit, a
// Stream (pipe) to connect to our end of a new socketpair, or (fd -1, no
// pipe) /dev/null.
struct ChildFd {
  int fd = -1;
  Stream* pipe = nullptr;
};
struct SpawnSpec {
  std::string file;
  std::vector<std::string> argv;
  const std::vector<std::string>* env = nullptr;  // null: inherit ours
  std::string cwd;
  bool detached = false;  // own session and process group (setsid)
  std::vector<ChildFd> fds = {ChildFd{}, ChildFd{1}, ChildFd{2}};
};
class Child {
 public:
  static Child* spawn(uv_loop_t* loop, const SpawnSpec& spec, std::string& err);
  int pid() const { return pid_; }
  int kill(int sig);
  // status, signal. The Child frees itself after this returns.
  std::function<void(int64_t exit_status, int term_signal)> on_exit;

 private:
  static void exit_cb(uv_process_t*, int64_t, int);
  uv_process_t p_;
  int pid_ = 0;
  bool exited_ = false;
};

// Binds and listens on a free TCP port in [lo, hi] on host; returns the fd or
// -1 with err (e.g. "no free port in 50000-50009").
int bind_free_port(const std::string& host, uint16_t lo, uint16_t hi, uint16_t& port, std::string& err);

// True if fd is an open socket (libuv aborts on a file or /dev/null).
bool is_socket(int fd);

// Runs fn on a fresh loop, then closes the loop cleanly; returns fn's result.
int with_loop(const std::function<int(uv_loop_t*)>& fn);

// Closes every handle still open and runs the loop until they are gone;
// returns uv_loop_close's result.
int close_loop(uv_loop_t* loop);

// Directory of the running executable (to find sibling binaries).
std::string self_dir();

uint64_t now_ms();   // monotonic
double wall_time();  // seconds since the epoch
std::string iso_time(double t);

}  // namespace jsd
