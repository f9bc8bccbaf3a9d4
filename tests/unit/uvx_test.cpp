#include "uvx.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

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
