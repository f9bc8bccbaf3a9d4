// The parts of the node's job supervisor (job_supervisor.cpp,
// job_table.cpp): a job's kept output, and a connection to a listener. Only the supervisor includes this.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frame.h"

namespace jsd::supervisor_parts {

constexpr int kDrainMs = 2000;             // output after the job's exit (see job_run.cpp)
constexpr size_t kForwardMax = 256 << 10;  // unsent to the listener: stop reading the jobs
constexpr size_t kMaxFrame = 16 << 20;     // a start request (argv and environment)
constexpr int kLockWaitMs = 2000;          // for a supervisor that is just ending

inline double wall_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}
inline int64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// One output stream of a job, kept in segments of the job's directory.
struct Kept {
  int fd;         // 1 or 2
  int pipe = -1;  // our read end; -1 once at its end
  uint64_t total = 0;
  std::deque<std::pair<uint64_t, uint64_t>> segs;  // offset, size
  int seg_fd = -1;
  uint64_t seg_max = 0, keep = 0;

  std::string name(uint64_t off) const { return (fd == 1 ? "stdout." : "stderr.") + std::to_string(off); }
  uint64_t dropped() const { return segs.empty() ? total : segs.front().first; }

  // Appends data; the oldest segments go once more than keep is kept.
  void append(int dirfd, const char* p, size_t n) {
    while (n > 0) {
      if (seg_fd < 0 || segs.back().second >= seg_max) {
        if (seg_fd >= 0) close(seg_fd);
        seg_fd = openat(dirfd, name(total).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        segs.emplace_back(total, 0);
      }
      size_t room = size_t(seg_max - segs.back().second);
      size_t w = n < room ? n : room;
      if (seg_fd >= 0) {
        size_t off = 0;
        while (off < w) {
          ssize_t k = write(seg_fd, p + off, w - off);
          if (k < 0 && errno == EINTR) continue;
          if (k <= 0) break;  // a full disk: the output still goes to the listener
          off += size_t(k);
        }
      }
      segs.back().second += w;
      total += w;
      p += w;
      n -= w;
      while (segs.size() > 1 && total - segs[1].first >= keep) {
        unlinkat(dirfd, name(segs.front().first).c_str(), 0);
        segs.pop_front();
      }
    }
  }
  void close_all() {
    if (pipe >= 0) close(pipe), pipe = -1;
    if (seg_fd >= 0) close(seg_fd), seg_fd = -1;
  }
};

struct Job {
  std::string id, dir;
  int dirfd = -1;
  pid_t pid = 0;
  Kept out, err;
  bool reaped = false, paused = false;
  int status = 0;
  bool status_unknown = false;  // an adopted job seen to end through its pidfd
  bool adopted = false;         // started by a supervisor that died
  bool await_status = false;    // ... and its listener, the job's reaper, will say how it ended
  int pidfd = -1;               // an adopted job's, while nobody says how it ended
  int input = -1;               // our write end of its stdin FIFO while its input is not complete
  double ended = 0;
  int64_t drain_until = 0;
};

// A connection to a listener: frames in, frames out (never blocking).
struct Conn {
  int fd = -1;
  FrameDecoder dec{kMaxFrame};
  std::string out;
  explicit Conn(int f) : fd(f) {}
  ~Conn() {
    if (fd >= 0) close(fd);
  }
  void queue(std::string_view payload) { append_frame(out, payload); }
  // False once the peer is gone.
  bool flush() {
    while (!out.empty()) {
      ssize_t n = send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) return false;
      out.erase(0, size_t(n));
    }
    return true;
  }
  // Reads what is there; false on EOF, an error or a frame too large.
  bool read(std::vector<std::string>& frames) {
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    dec.feed(buf, size_t(n));
    std::string_view payload;
    for (;;) {
      auto r = dec.next(payload);
      if (r == FrameDecoder::Result::need_more) return true;
      if (r == FrameDecoder::Result::too_large) return false;
      frames.emplace_back(payload);
    }
  }
};

}  // namespace jsd::supervisor_parts
