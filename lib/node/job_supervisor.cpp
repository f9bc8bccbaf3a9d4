// The per-job supervisor's loop: poll(2) over the job's two pipes, the
// SIGCHLD signalfd, its socket and the listener's stream. No libuv: it is a
// single-purpose process that must start fast (it is on every job's path).
#include "job_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>

#include "files.h"
#include "frame.h"
#include "job_files.h"
#include "wire.h"

extern char** environ;

namespace jsd {

bool parse_supervisor_args(int argc, char** argv, SupervisorOptions& o, std::string& err) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) {
      err = "option " + a + " needs a value";
      return false;
    }
    std::string v = argv[++i];
    if (a == "--dir") {
      o.dir = v;
    } else if (a == "--cwd") {
      o.cwd = v;
    } else if (a == "--keep") {
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 15) {
        err = "--keep wants a number of bytes, got '" + v + "'";
        return false;
      }
      o.keep = std::stoull(v);
    } else {
      err = "unknown option " + a;
      return false;
    }
  }
  for (; i < argc; ++i) o.argv.push_back(argv[i]);
  if (o.dir.empty() || o.argv.empty()) {
    err = "usage: jsd-job --dir DIR --keep BYTES [--cwd DIR] -- CMD [ARG...]";
    return false;
  }
  return true;
}

namespace {

constexpr int kDrainMs = 2000;             // output after the job's exit (see job_run.cpp)
constexpr size_t kForwardMax = 256 << 10;  // unsent to the listener: stop reading the job

double wall_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}
int64_t mono_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// One output stream of the job, kept in segments of the job's directory.
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
};

class Supervisor {
 public:
  explicit Supervisor(const SupervisorOptions& o) : o_(o) {
    out_.fd = 1;
    err_.fd = 2;
    for (Kept* k : {&out_, &err_}) {
      k->keep = o.keep;
      // Four segments a stream: between 3/4 and all of keep is kept.
      k->seg_max = o.keep / 4 ? o.keep / 4 : 1;
    }
  }

  int run() {
    signal(SIGPIPE, SIG_IGN);  // a listener that died is EPIPE, not our death
    // Nothing of the listener's but the stream reaches the job (issue 7's
    // rule: a job gets descriptors 0-2 only).
    if (syscall(SYS_close_range, o_.fd + 1, ~0U, 0) != 0)
      for (int fd = o_.fd + 1; fd < 1024; ++fd) close(fd);
    fcntl(o_.fd, F_SETFD, FD_CLOEXEC);
    conn_ = o_.fd;
    dirfd_ = open(o_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd_ < 0) return fail_start(o_.dir + ": " + strerror(errno), false);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, nullptr);
    sigfd_ = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd_ < 0) return fail_start(std::string("signalfd: ") + strerror(errno), false);
    if (!listen_socket()) return fail_start("cannot listen on " + o_.dir + "/sock: " + strerror(errno), false);
    std::string err;
    bool command = false;
    if (!spawn(err, command)) return fail_start(err, command);
    std::string m(1, char(SupMsg::started));
    WireWriter(m, 4).u32(uint32_t(pid_));
    queue(m);
    return loop();
  }

 private:
  bool listen_socket() {
    int dfd = -1;
    std::string path = unix_socket_path(o_.dir + "/sock", dfd);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty()) return false;
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    lsock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    unlink(path.c_str());  // a previous attempt's (never a live supervisor's: the directory is new)
    bool ok = lsock_ >= 0 && bind(lsock_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(lsock_, 4) == 0;
    int e = errno;
    if (dfd >= 0) close(dfd);
    errno = e;
    return ok;
  }

  bool spawn(std::string& err, bool& command) {
    int out[2], er[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      err = std::string("pipe: ") + strerror(errno);
      return false;
    }
    if (pipe2(er, O_CLOEXEC) != 0) {
      err = std::string("pipe: ") + strerror(errno);
      return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    // A job gets descriptors 0-2 and nothing else (close_range in the child).
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!o_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o_.cwd.c_str());
    // A job starts clean: its own session (its process group is signalled
    // as one, and is not ours), no blocked signals, default dispositions.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (auto& a : o_.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(er[1]);
    if (rc != 0) {
      close(out[0]);
      close(er[0]);
      // The system's limits are jsd's failure; anything else is the command's.
      command = !(rc == EAGAIN || rc == ENOMEM || rc == EMFILE || rc == ENFILE || rc == ENOSYS);
      err = o_.argv[0] + ": " + strerror(rc);
      return false;
    }
    pid_ = pid;
    out_.pipe = out[0];
    err_.pipe = er[0];
    fcntl(out_.pipe, F_SETFL, O_NONBLOCK);
    fcntl(err_.pipe, F_SETFL, O_NONBLOCK);
    return true;
  }

  int fail_start(const std::string& why, bool command) {
    JobEnd e;
    e.known = true;
    e.error = why;
    e.command = command;
    e.ended = wall_now();
    return finish(e);
  }

  void queue(std::string_view payload) {
    if (conn_ >= 0) append_frame(outbuf_, payload);
  }

  void drop_conn() {
    if (conn_ >= 0) close(conn_);
    conn_ = -1;
    outbuf_.clear();
    inbuf_.clear();
  }

  // Writes what it can without blocking; false when the listener is gone.
  void flush() {
    while (conn_ >= 0 && !outbuf_.empty()) {
      ssize_t n = send(conn_, outbuf_.data(), outbuf_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) return drop_conn();
      outbuf_.erase(0, size_t(n));
    }
  }

  void read_conn() {
    char buf[256];
    ssize_t n = recv(conn_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return drop_conn();  // the listener is gone: the job goes on
    inbuf_.append(buf, size_t(n));
    std::string_view in = inbuf_, payload;
    bool bad = false;
    while (next_frame(in, payload, bad))
      if (payload.size() == 2 && payload[0] == char(SupMsg::kill) && !reaped_) ::kill(-pid_, uint8_t(payload[1]));
    if (bad) return drop_conn();
    inbuf_.erase(0, inbuf_.size() - in.size());
  }

  // A restarted listener: it replaces the old stream, if any.
  void accept_conn() {
    int c = accept4(lsock_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;
    drop_conn();
    conn_ = c;
    std::string m(1, char(SupMsg::hello));
    WireWriter w(m, 20);
    w.u32(uint32_t(pid_));
    w.u64(out_.total);
    w.u64(err_.total);
    queue(m);
  }

  void read_pipe(Kept& k) {
    char buf[65536];
    ssize_t n = read(k.pipe, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      close(k.pipe);
      k.pipe = -1;
      return;
    }
    k.append(dirfd_, buf, size_t(n));
    if (conn_ >= 0) {
      std::string m;
      m.reserve(size_t(n) + 2);
      m += char(SupMsg::output);
      m += char(k.fd);
      m.append(buf, size_t(n));
      queue(m);
    }
  }

  void reap() {
    signalfd_siginfo si;
    while (read(sigfd_, &si, sizeof si) > 0) {
    }
    int st = 0;
    pid_t got = waitpid(pid_, &st, WNOHANG);
    if (got != pid_) return;
    reaped_ = true;
    status_ = st;
    ended_ = wall_now();
    drain_until_ = mono_ms() + kDrainMs;
  }

  int loop() {
    for (;;) {
      flush();
      if (reaped_ && ((out_.pipe < 0 && err_.pipe < 0) || mono_ms() >= drain_until_)) break;
      pollfd p[5];
      int n = 0;
      // While the listener does not take the output, the job waits (its
      // pipe fills): backpressure, as without a supervisor. With no
      // listener at all, the output only goes to disk.
      bool room = outbuf_.size() < kForwardMax;
      if (reaped_ && !room) drain_until_ = mono_ms() + kDrainMs;  // waiting for room is not draining
      int i_out = -1, i_err = -1, i_sig, i_l, i_c = -1;
      if (out_.pipe >= 0 && room) p[i_out = n++] = {out_.pipe, POLLIN, 0};
      if (err_.pipe >= 0 && room) p[i_err = n++] = {err_.pipe, POLLIN, 0};
      p[i_sig = n++] = {sigfd_, POLLIN, 0};
      p[i_l = n++] = {lsock_, POLLIN, 0};
      if (conn_ >= 0) p[i_c = n++] = {conn_, short(POLLIN | (outbuf_.empty() ? 0 : POLLOUT)), 0};
      int timeout = reaped_ ? int(std::max<int64_t>(0, drain_until_ - mono_ms())) : -1;
      int rc = poll(p, nfds_t(n), timeout);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) break;
      if (i_c >= 0 && p[i_c].revents & (POLLIN | POLLHUP | POLLERR)) read_conn();
      if (i_out >= 0 && p[i_out].revents) read_pipe(out_);
      if (i_err >= 0 && p[i_err].revents) read_pipe(err_);
      if (p[i_sig].revents) reap();
      if (p[i_l].revents) accept_conn();
    }
    // A background process that keeps the pipes open is not the job.
    for (Kept* k : {&out_, &err_})
      if (k->pipe >= 0) close(k->pipe), k->pipe = -1;
    JobEnd e;
    e.known = true;
    e.ended = ended_;
    if (WIFSIGNALED(status_))
      e.signal = WTERMSIG(status_);
    else
      e.exit_code = WEXITSTATUS(status_);
    return finish(e);
  }

  // The end goes to the listener first (it answers at once), then to disk
  // durably; then we wait until the listener has it all, or is gone.
  int finish(JobEnd& e) {
    e.out_bytes = out_.total;
    e.err_bytes = err_.total;
    e.out_dropped = out_.dropped();
    e.err_dropped = err_.dropped();
    for (Kept* k : {&out_, &err_})
      if (k->seg_fd >= 0) close(k->seg_fd), k->seg_fd = -1;
    std::string text = job_end_text(e);
    queue(std::string(1, char(SupMsg::end)) + text);
    flush();
    std::string err;
    bool ok = write_file_atomic(o_.dir + "/end.json", text, true, err);
    // From here a restarted listener reads end.json instead.
    if (lsock_ >= 0) {
      close(lsock_);
      unlinkat(dirfd_, "sock", 0);
    }
    while (conn_ >= 0 && !outbuf_.empty()) {
      pollfd p{conn_, POLLOUT, 0};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) break;
      flush();
    }
    return ok ? 0 : 1;
  }

  const SupervisorOptions& o_;
  Kept out_, err_;
  int dirfd_ = -1, sigfd_ = -1, lsock_ = -1, conn_ = -1;
  pid_t pid_ = 0;
  bool reaped_ = false;
  int status_ = 0;
  double ended_ = 0;
  int64_t drain_until_ = 0;
  std::string outbuf_, inbuf_;
};

}  // namespace

int run_supervisor(const SupervisorOptions& o) { return Supervisor(o).run(); }

}  // namespace jsd
