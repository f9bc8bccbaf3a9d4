#include "uvx.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crossed_stdio.h"

using namespace jsd;

namespace {
// Blocking write of all of s.
void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    ASSERT_GT(n, 0);
    off += size_t(n);
  }
}
}  // namespace

TEST(Stream, FramesSurviveAnySplitAndBatching) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::string wire;
  std::vector<std::string> sent;
  for (int i = 0; i < 300; ++i) {
    sent.push_back(std::string(size_t(i * 37 % 5000), char('a' + i % 26)));
    append_frame(wire, sent.back());
  }
  // Write everything before the loop runs, in pieces of varying size, and
  // close: the reader must get every frame, in order, then EOF.
  std::thread writer([&] {
    size_t off = 0, step = 1;
    while (off < wire.size()) {
      size_t n = std::min(step, wire.size() - off);
      write_all(sv[1], wire.substr(off, n));
      off += n;
      step = step * 3 % 9973 + 1;
    }
    close(sv[1]);
  });
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::vector<std::string> got;
  std::string why = "not closed";
  int batches = 0;
  {
    std::string err;
    Stream* s = Stream::open_fd(&loop, sv[0], err);
    ASSERT_NE(s, nullptr) << err;
    s->on_frame = [&](std::string_view p) { got.emplace_back(p); };
    s->on_frames_done = [&] { ++batches; };
    s->on_close = [&](const std::string& w) { why = w; };
    ASSERT_EQ(s->start(8192), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  writer.join();
  EXPECT_EQ(close_loop(&loop), 0);
  EXPECT_EQ(why, "closed by peer");
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i], sent[i]) << i;
  EXPECT_GT(batches, 0);
}

TEST(Stream, OversizedFrameClosesOnlyThatStream) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  write_all(sv[1], make_frame("ok") + std::string("\x00\x10\x00\x00", 4) + "tail");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::vector<std::string> got;
  std::string why;
  {
    std::string err;
    Stream* s = Stream::open_fd(&loop, sv[0], err);
    ASSERT_NE(s, nullptr) << err;
    s->on_frame = [&](std::string_view p) { got.emplace_back(p); };
    s->on_close = [&](const std::string& w) { why = w; };
    ASSERT_EQ(s->start(1024), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  close(sv[1]);
  EXPECT_EQ(close_loop(&loop), 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "ok");
  EXPECT_NE(why.find("exceeds the limit"), std::string::npos) << why;
}

TEST(Stream, OpenFdRefusesWhatIsNotASocket) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string err;
  EXPECT_EQ(Stream::open_fd(&loop, fds[0], err), nullptr);
  EXPECT_NE(err.find("socket"), std::string::npos) << err;
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(close_loop(&loop), 0);
}

// The handle idiom (uvx.h): each handle is closed exactly once and freed
// whatever order its owner and the loop die in. A double uv_close aborts in
// libuv; a box nobody frees is a leak under ASan.

TEST(Timer, DestroyedAfterCloseLoop) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  auto t = std::make_unique<Timer>(&loop);
  t->start(3600 * 1000, [] { ADD_FAILURE() << "fired"; });
  EXPECT_TRUE(t->active());
  EXPECT_EQ(close_loop(&loop), 0);
  EXPECT_FALSE(t->active());
  t.reset();  // the loop closed it: no second uv_close, and the box goes
}

TEST(Signal, DestroyedAfterCloseLoop) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  auto s = std::make_unique<Signal>(&loop, SIGUSR2, [] { ADD_FAILURE() << "signalled"; });
  EXPECT_EQ(s->error(), 0);
  EXPECT_EQ(close_loop(&loop), 0);
  s.reset();
}

TEST(Signal, BadSignalIsReportedAndStillClosedOnce) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    Signal s(&loop, 0, [] {});  // libuv refuses signal 0
    EXPECT_NE(s.error(), 0);
  }
  EXPECT_EQ(close_loop(&loop), 0);
}

TEST(Timer, StoppedAndRestartedFromItsCallback) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int fired = 0;
  {
    Timer t(&loop);
    std::function<void()> tick = [&] {
      ++fired;
      t.stop();
      EXPECT_FALSE(t.active());
      // Replaces the callback that is running right now.
      if (fired < 3) {
        EXPECT_EQ(t.start(0, tick, 1), 0);
      }
    };
    ASSERT_EQ(t.start(0, tick, 1), 0);
    uv_run(&loop, UV_RUN_DEFAULT);  // returns once the timer stays stopped
    EXPECT_FALSE(t.active());
  }
  EXPECT_EQ(fired, 3);
  EXPECT_EQ(close_loop(&loop), 0);
}

TEST(Timer, DestroyedFromItsCallback) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  auto t = std::make_unique<Timer>(&loop);
  int fired = 0;
  t->start(
      0,
      [&] {
        ++fired;
        t.reset();
      },
      1);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(close_loop(&loop), 0);
}

TEST(Stream, ClosedFromItsOwnCallback) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  write_all(sv[1], make_frame("one") + make_frame("two") + make_frame("three"));
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::vector<std::string> got, whys;
  int batches = 0;
  std::string err;
  Stream* s = Stream::open_fd(&loop, sv[0], err);
  ASSERT_NE(s, nullptr) << err;
  s->on_frame = [&](std::string_view p) {
    got.emplace_back(p);
    s->close("had enough");
    s->close("twice");  // a no-op
    s->send("after close");
  };
  s->on_frames_done = [&] { ++batches; };
  s->on_close = [&](const std::string& w) { whys.push_back(w); };
  ASSERT_EQ(s->start(), 0);
  uv_run(&loop, UV_RUN_DEFAULT);  // returns once the stream is closed and freed
  EXPECT_EQ(close_loop(&loop), 0);
  close(sv[1]);
  EXPECT_EQ(got, std::vector<std::string>{"one"});
  EXPECT_EQ(whys, std::vector<std::string>{"had enough"});
  EXPECT_EQ(batches, 0);
}

// close_loop() with every kind of handle still open: the loop closes, no
// callback reaches an owner that may be gone (a write cancelled under a
// stream must not call on_close), and the owners let go afterwards.
TEST(CloseLoop, WithLiveHandlesReturnsZero) {
  int sv[2], cv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cv), 0);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  auto timer = std::make_unique<Timer>(&loop);
  timer->start(3600 * 1000, [] { ADD_FAILURE() << "fired"; });
  auto sig = std::make_unique<Signal>(&loop, SIGUSR2, [] { ADD_FAILURE() << "signalled"; });
  std::string err;
  Stream* s = Stream::open_fd(&loop, sv[0], err);
  ASSERT_NE(s, nullptr) << err;
  int closes = 0;
  s->on_close = [&](const std::string&) { ++closes; };
  ASSERT_EQ(s->start(), 0);
  // More than the socket buffers hold while nobody reads sv[1]: the write
  // is still in flight when the loop closes.
  s->send(std::string(8 << 20, 'x'));
  uv_run(&loop, UV_RUN_NOWAIT);
  EXPECT_GT(s->pending_bytes(), 0u);
  // A child that waits for EOF on its stdin.
  SpawnSpec spec;
  spec.file = "/bin/sh";
  spec.argv = {"sh", "-c", "read x"};
  spec.fds = {ChildFd{cv[1]}, ChildFd{1}, ChildFd{2}};
  Child* child = Child::spawn(&loop, spec, err);
  ASSERT_NE(child, nullptr) << err;
  int pid = child->pid();
  close(cv[1]);
  child->on_exit = [](int64_t, int) { ADD_FAILURE() << "on_exit after close_loop"; };

  EXPECT_EQ(close_loop(&loop), 0);
  EXPECT_EQ(closes, 0);
  EXPECT_TRUE(s->closing());
  EXPECT_FALSE(timer->active());
  EXPECT_EQ(timer->start(1, [] {}), UV_EINVAL);

  // The owners let go after the loop: each box is freed now (ASan checks).
  timer.reset();
  sig.reset();
  s->send("ignored");
  s->close();
  EXPECT_EQ(closes, 1);  // the owner closing it still hears of it
  child->release();
  close(cv[0]);  // EOF: the child exits; reap it here, the loop cannot
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  close(sv[1]);
}

// A stream may take bigger frames once set_max_frame() raised its limit
// (a queue-server's link after the ticket), even in the middle of a read.
TEST(Stream, SetMaxFrameRaisesTheLimitFromTheNextFrame) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::string big(20000, 'b');
  write_all(sv[1], make_frame("ticket") + make_frame(big));
  close(sv[1]);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::vector<std::string> got;
  std::string why;
  {
    std::string err;
    Stream* s = Stream::open_fd(&loop, sv[0], err);
    ASSERT_NE(s, nullptr) << err;
    s->on_frame = [&](std::string_view p) {
      got.emplace_back(p);
      if (got.size() == 1) s->set_max_frame(1 << 20);
    };
    s->on_close = [&](const std::string& w) { why = w; };
    ASSERT_EQ(s->start(4096), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(close_loop(&loop), 0);
  ASSERT_EQ(got.size(), 2u) << why;
  EXPECT_EQ(got[1], big);
  EXPECT_EQ(why, "closed by peer");
}

// A child gets exactly the descriptors it is given, as 0..n-1, even when a
// source descriptor is one of those numbers; its exit status and its
// signal come back through on_exit.
TEST(Child, DescriptorsExitStatusAndSignal) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::string err;
  // Swap 1 and 2 in the child: each source is the other's target.
  jsd_test::CrossedStdio x;
  ASSERT_TRUE(x.ok);
  Stream* pipe = Stream::pipe(&loop);
  ASSERT_NE(pipe, nullptr);
  SpawnSpec spec;
  spec.file = "/bin/sh";
  spec.argv = {"sh", "-c", "echo out; echo err >&2; echo three >&3; exit 7"};
  spec.fds = {ChildFd{}, ChildFd{2}, ChildFd{1}, ChildFd{-1, pipe}};
  Child* child = Child::spawn(&loop, spec, err);
  x.restore();
  ASSERT_NE(child, nullptr) << err;
  int64_t status = -1;
  int sig = -1;
  child->on_exit = [&](int64_t st, int sg) {
    status = st;
    sig = sg;
  };
  std::string from_fd3;
  pipe->on_data = [&](std::string_view d) { from_fd3 += d; };
  pipe->on_close = [&](const std::string&) { pipe = nullptr; };
  ASSERT_EQ(pipe->start(), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(status, 7);
  EXPECT_EQ(sig, 0);
  EXPECT_EQ(from_fd3, "three\n");
  EXPECT_EQ(x.out(), "out\n");
  EXPECT_EQ(x.err(), "err\n");

  spec.argv = {"sh", "-c", "kill -TERM $$"};
  spec.fds = {ChildFd{}, ChildFd{1}, ChildFd{2}};
  child = Child::spawn(&loop, spec, err);
  ASSERT_NE(child, nullptr) << err;
  child->on_exit = [&](int64_t st, int sg) {
    status = st;
    sig = sg;
  };
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(sig, SIGTERM);

  spec.file = "/nonexistent/jsd-nothing";
  EXPECT_EQ(Child::spawn(&loop, spec, err), nullptr);
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
  EXPECT_EQ(close_loop(&loop), 0);
}

// What a stalled process sees: the peer's message is already in the socket
// when the loop next runs, and the deadline is already due. libuv runs
// timers before it polls, so a plain Timer times the peer out; a Deadline
// reads the message first.
namespace {
struct StallRace {
  bool timed_out = false, got = false;
  std::string order;
};

template <class T>
StallRace race_after_stall() {
  StallRace r;
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  uv_loop_t loop;
  EXPECT_EQ(uv_loop_init(&loop), 0);
  {
    std::string err;
    Stream* s = Stream::open_fd(&loop, sv[0], err);
    EXPECT_NE(s, nullptr) << err;
    T deadline(&loop);
    s->on_frame = [&](std::string_view) {
      r.order += "frame ";
      deadline.stop();
      s->close();
    };
    deadline.start(1, [&] {
      r.order += "timeout ";
      s->close();
    });
    std::string wire;
    append_frame(wire, "ticket");
    write_all(sv[1], wire);
    // The stall: the process does not run while the ticket arrives and its
    // deadline passes (a sleep is the stall here, not a synchronisation).
    usleep(100000);  // well past Deadline::kLateMs
    EXPECT_EQ(s->start(1024), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  close(sv[1]);
  EXPECT_EQ(close_loop(&loop), 0);
  return r;
}
}  // namespace

TEST(Deadline, AMessageThatArrivedDuringAStallWinsOverTheTimeout) {
  EXPECT_EQ(race_after_stall<Timer>().order, "timeout ");  // why Deadline exists
  EXPECT_EQ(race_after_stall<Deadline>().order, "frame ");
}

TEST(Deadline, FiresOnceWhenNothingCameAndNotAfterStop) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int fired = 0, stopped_fired = 0;
  {
    Deadline d(&loop), s(&loop);
    ASSERT_EQ(d.start(1, [&] { ++fired; }), 0);
    ASSERT_EQ(s.start(0, [&] { ++stopped_fired; }), 0);
    // A timer due in the same turn stops s in its grace turn: s is late
    // (the stall below), so it takes one.
    Timer t(&loop);
    ASSERT_EQ(t.start(0, [&] { s.stop(); }), 0);
    usleep(100000);  // well past Deadline::kLateMs
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_FALSE(d.active());
  }
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(stopped_fired, 0);
  EXPECT_EQ(close_loop(&loop), 0);
}

TEST(Deadline, DestroyedFromItsCallback) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  auto d = std::make_unique<Deadline>(&loop);
  int fired = 0;
  d->start(0, [&] {
    ++fired;
    d.reset();
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(close_loop(&loop), 0);
}
