// libuv plumbing with one owner per handle.
//
// Every handle lives on the heap in a box (detail::HandleBox) next to its
// callbacks, and two parties hold it: its owner and the loop. Whichever lets
// go first closes the handle, so it is closed exactly once; the box is freed
// when both have let go, never before the close callback. The owner lets go
// with close()/discard() (Stream), its destructor (Timer, Signal), on_exit or
// release() (Child); the loop lets go in close_loop(). So an owner may drop a
// handle at any moment, even from inside one of its own callbacks, and may
// outlive the loop.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "exit_codes.h"
#include "frame.h"

namespace jsd {

std::string uv_error(int rc);

namespace detail {
class HandleBox {
 public:
  HandleBox(const HandleBox&) = delete;
  HandleBox& operator=(const HandleBox&) = delete;
  // False before a successful init and once the handle is closing: by its
  // owner, or by close_loop() behind the owner's back.
  bool is_open() const { return h_ && !uv_closing_; }
  // close_loop()'s part: closes every open box of loop with its own close
  // callback (a plain uv_close would leak the box).
  static void close_all(uv_loop_t* loop);

 protected:
  HandleBox() = default;
  virtual ~HandleBox();
  // Called once uv_*_init succeeded on h (which must be a member of this):
  // from then on the handle must be closed before the box is freed.
  void adopt(uv_handle_t* h);
  template <class T>
  static T* from(const void* data) {
    return static_cast<T*>(static_cast<HandleBox*>(const_cast<void*>(data)));
  }
  // The owner lets go: closes the handle if it is still open and frees the
  // box in the close callback, or at once when the loop closed it already
  // (or it never opened). The owner must not touch the box afterwards.
  void release();

 private:
  void close_handle();
  uv_handle_t* h_ = nullptr;
  bool uv_closing_ = false;  // uv_close was called (by whoever let go first)
  bool uv_closed_ = false;   // ... and its callback ran
  bool released_ = false;    // the owner let go
  // The open boxes of this thread (a loop and its handles stay on one
  // thread), so close_loop() can tell our handles from foreign ones.
  HandleBox *prev_ = nullptr, *next_ = nullptr;
};
}  // namespace detail

// A length-prefixed frame stream over TCP or a Unix socket.
class Stream : public detail::HandleBox {
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
  // owner closed it). The object is freed after this returns, later. Not
  // called when close_loop() closes the stream: the owner may be gone by
  // then; an owner that is not still has to close() or discard() it.
  std::function<void(const std::string& why)> on_close;

  int start(size_t max_frame = kDefaultMaxFrame);
  // Raises (or lowers) the frame limit of a started stream, e.g. once its
  // peer has authenticated; the read buffer follows at the next read.
  void set_max_frame(size_t max_frame);
  // Stop and resume reading (backpressure); frames already read stay.
  void pause();
  void resume();
  bool paused() const { return paused_; }
  int connect(const Endpoint& ep, std::function<void(int status)> done);
  // A listening socket in the same box (bound, or opened on an inherited
  // descriptor, through tcp_handle()/pipe_handle()): on_connection is
  // called for each connection waiting; accept() takes it into a fresh
  // Stream of the same kind. close() stops listening.
  int listen(int backlog, std::function<void(int status)> on_connection);
  int accept(Stream* client);
  int connect_unix(const std::string& path, std::function<void(int status)> done);
  // Frames payload and queues it; writes are coalesced while one is in flight.
  void send(std::string_view payload);
  // Queues bytes that are already framed.
  void send_raw(std::string_view bytes);
  // Called once all queued bytes reached the kernel (for acks that promise
  // the next hop has the data).
  void when_flushed(std::function<void()> fn);
  // The owner lets go (also after close_loop()); the pointer is dead after.
  void close(const std::string& why = "");
  // Closes without calling on_close: for an owner that is done with it.
  void discard() {
    on_close = nullptr;
    close();
  }
  // True once the owner closed it or close_loop() did: nothing is sent.
  bool closing() const { return closing_ || !is_open(); }
  // Stops delivering frames (the owner is done reading) without closing.
  void mute() { muted_ = true; }
  size_t pending_bytes() const { return inflight_.size() + pending_.size(); }
  std::string peer_name();

 private:
  Stream() = default;
  ~Stream() override = default;
  // Neither closed by the owner nor by close_loop(): callbacks may run.
  bool live() const { return !closing_ && is_open(); }
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
  // Sized by start() and set_max_frame(), allocated at the first read: a
  // connection that has not authenticated yet reads into a few KiB, not
  // 64, and an idle one holds none (thousands of them may be open at once).
  std::unique_ptr<char[]> readbuf_;
  size_t readbuf_size_ = 0, readbuf_want_ = 0;
  std::string inflight_, pending_;
  uv_write_t wreq_;
  std::vector<std::function<void()>> flushed_waiters_, inflight_waiters_;
  uv_connect_t creq_;
  std::function<void(int)> connect_done_;
  std::function<void(int)> on_connection_;
};

// A timer owned by this object; its box outlives it until the close
// callback, so it may be destroyed from inside its own callback.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  // 0, or the libuv error: only a timer whose loop is closed (close_loop())
  // cannot start, since uv_timer_init cannot fail on Unix.
  int start(uint64_t ms, std::function<void()> fn, uint64_t repeat_ms = 0);
  void stop();
  bool active() const;
  // It does not keep the loop alive (uv_unref): a watch, not work.
  void weak();

 private:
  struct Box;
  Box* box_;
};

// A timeout that is judged only after the loop has read what is waiting.
// libuv runs due timers before it polls for I/O, so a process that was
// itself stalled (a loaded machine: a load average of hundreds while a mesh
// forms) would time out a peer whose message already sits in its socket,
// blame the peer for its own stall, and make the peer start over, which
// loads the machine more. A Deadline that expires late (the loop's clock
// passed its due time by more than kLateMs: the process was stalled or
// busy; an idle VM wakes up to a few ms late, a stall is hundreds)
// looks once more after one poll of the loop (a 1 ms timer: due after
// this turn's timers, so the poll comes first) and calls fn only if
// nothing stopped or restarted it meanwhile; one that expires on time
// follows a poll that found nothing and calls fn at once (no extra
// wake-up on an idle link). May be destroyed from inside fn.
class Deadline {
 public:
  explicit Deadline(uv_loop_t* loop) : loop_(loop), t_(loop) {}
  int start(uint64_t ms, std::function<void()> fn);
  void stop() { t_.stop(); }
  bool active() const { return t_.active(); }
  static constexpr uint64_t kLateMs = 25;

 private:
  void fire();
  uv_loop_t* loop_;
  Timer t_;
  std::function<void()> fn_;
  uint64_t due_ = 0;
};

// Calls fn on signum while this object lives. Does not keep the loop alive.
class Signal {
 public:
  Signal(uv_loop_t* loop, int signum, std::function<void()> fn);
  ~Signal();
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  // 0, or why the signal is not watched (also logged as an error: the
  // callers are daemons whose SIGTERM then takes the default action).
  int error() const { return error_; }

 private:
  struct Box;
  Box* box_;
  int error_ = 0;
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
// Started with the one spawner (spawner.h: posix_spawn, the descriptors
// of fds and no other) and watched through a pidfd (Linux 5.3 or later).
class Child : public detail::HandleBox {
 public:
  static Child* spawn(uv_loop_t* loop, const SpawnSpec& spec, std::string& err);
  // Watches a process spawn() did not start: one that became our child
  // (we are its subreaper), or one that is not, whose end alone is seen
  // (on_exit then says 255, as for a child reaped by someone else). Null
  // with err when it has no pidfd (it is gone already).
  static Child* watch(uv_loop_t* loop, int pid, std::string& err);
  int pid() const { return pid_; }
  int kill(int sig);
  // The watch alone does not keep the loop running.
  void unref();
  // status, signal. The Child frees itself after this returns. Not called
  // once close_loop() closed the handle (the loop no longer reaps).
  std::function<void(int64_t exit_status, int term_signal)> on_exit;
  // For an owner done with a child that has not exited (e.g. after
  // close_loop()): the process runs on unwatched, on_exit is not called and
  // the pointer is dead after.
  void release() { HandleBox::release(); }

 private:
  Child() = default;
  ~Child() override;
  int watch_pidfd(uv_loop_t* loop);
  void exited(int64_t status, int sig);
  uv_poll_t poll_;  // on pidfd_
  int pidfd_ = -1;
  int pid_ = 0;
  bool exited_ = false;
};

// Binds and listens on a free TCP port in [lo, hi] on host; returns the fd or
// -1 with err (e.g. "no free port in 50000-50009").
int bind_free_port(const std::string& host, uint16_t lo, uint16_t hi, uint16_t& port, std::string& err);

// True if fd is an open socket (libuv aborts on a file or /dev/null).
bool is_socket(int fd);

// Runs fn on a fresh loop, then closes the loop cleanly; returns fn's
// result, or loop_failure (with a line on stderr) if there is no loop. The
// default is the daemons' start-up error; the tools pass kExitJsdFailure.
int with_loop(const std::function<int(uv_loop_t*)>& fn, int loop_failure = kExitStartupError);

// Closes every handle still open and runs the loop until they are gone;
// returns uv_loop_close's result. Our handles' owners may outlive this: each
// box is freed when its owner lets go too.
int close_loop(uv_loop_t* loop);

// Directory of the running executable (to find sibling binaries).
std::string self_dir();

uint64_t now_ms();   // monotonic
double wall_time();  // seconds since the epoch
std::string iso_time(double t);

}  // namespace jsd
