// The listener's connections to its job supervisor: spawning it,
// connecting to the one a previous run left, watching its process, and
// letting go of one that is not ours (job_spawn.h).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "files.h"
#include "frame.h"
#include "job_spawn.h"
#include "log.h"
#include "spawner.h"
#include "uvx.h"
#include "wire.h"

namespace jsd {

namespace {

// A supervisor that a restarted listener connects to says which jobs it
// runs first: the listener waits for that list at start-up only.
constexpr int kListMs = 10000;

// Reads one frame from a blocking socket. False on EOF, a timeout or garbage.
bool read_frame(int fd, std::string& payload, int timeout_ms, size_t max) {
  std::string buf;
  size_t need = kFrameHeader;
  while (buf.size() < need) {
    pollfd p{fd, POLLIN, 0};
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    char tmp[4096];
    ssize_t n = recv(fd, tmp, std::min(sizeof tmp, need - buf.size()), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf.append(tmp, size_t(n));
    if (need == kFrameHeader && buf.size() == kFrameHeader) {
      uint32_t len = WireReader(buf).u32();
      if (len == 0 || len > max) return false;
      need += len;
    }
  }
  payload = buf.substr(kFrameHeader);
  return true;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(size_t(n));
  }
  return true;
}

int connect_unix_blocking(const std::string& where) {
  int dfd = -1;
  std::string path = unix_socket_path(where, dfd);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  bool ok = fd >= 0 && !path.empty();
  if (ok) {
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  int e = errno;
  if (dfd >= 0) ::close(dfd);
  if (!ok && fd >= 0) ::close(fd);
  errno = e;
  return ok ? fd : -1;
}

}  // namespace

// A supervisor a previous run of the listener left is not our child, nor
// are its jobs: should it die, how they end could not be known. Once it
// runs none of ours, we let it go (it ends with no listener and no job)
// and spawn our own for the next job.
void PosixJobProcesses::retire() {
  if (sup_ours_ || (!ctl_ && !ev_)) return;
  ++generation_;
  if (ctl_) ctl_->discard();
  if (ev_) ev_->discard();
  ctl_ = ev_ = nullptr;
  sup_pid_ = 0;
  queued_.clear();
  running_.clear();
  spawn_next_ = true;
}

// Reads the supervisor's list of jobs (at start-up, waiting for it; else
// as its first event), then the rest on the loop.
bool PosixJobProcesses::take_events(int fd, bool wait_for_list, std::string& err) {
  bool have_list = false;
  if (wait_for_list) {
    std::string first;
    std::vector<SupJob> jobs;
    if (!read_frame(fd, first, kListMs, 64 << 20) || !decode_sup_jobs(first, jobs)) {
      ::close(fd);
      err = "it did not say which jobs it runs";
      return false;
    }
    running_.clear();
    for (auto& j : jobs) running_[j.id] = j;
    have_list = true;
  }
  ev_ = Stream::open_fd(loop_, fd, err);
  if (!ev_) {
    ::close(fd);
    return false;
  }
  auto listed = std::make_shared<bool>(have_list);
  ev_->on_frame = [this, listed](std::string_view p) {
    if (!*listed) {
      *listed = true;  // a supervisor we spawned: it runs nothing yet
      return;
    }
    on_event(p);
  };
  uint64_t gen = generation_;
  ev_->on_close = [this, gen](const std::string& why) {
    ev_ = nullptr;
    if (gen != generation_) return;
    // Its process ending says it is gone; a connection alone might not.
    if (sup_pid_ <= 0) return supervisor_gone(why.empty() ? "it ended" : why);
    // Jobs wait for that: the loop must not end before it comes.
    if (!sups_.empty() || !pending_.empty()) watch_supervisor(sup_pid_, sup_ours_, false);
  };
  if (int rc = ev_->start(64 << 20); rc != 0) {
    err = "cannot read from it: " + uv_error(rc);
    ev_->discard();
    ev_ = nullptr;
    return false;
  }
  hold_loop();
  return true;
}

bool PosixJobProcesses::take_control(int fd, std::string& err) {
  ctl_ = Stream::open_fd(loop_, fd, err);
  if (!ctl_) {
    ::close(fd);
    return false;
  }
  ctl_->on_frame = [this](std::string_view p) { on_reply(p); };
  ctl_->on_close = [this](const std::string&) { ctl_ = nullptr; };
  if (int rc = ctl_->start(1 << 16); rc != 0) {
    err = "cannot read from it: " + uv_error(rc);
    ctl_->discard();
    ctl_ = nullptr;
    return false;
  }
  uv_unref(ctl_->handle());
  return true;
}

void PosixJobProcesses::hold_loop() {
  if (!ev_) return;
  if (sups_.empty() && pending_.empty())
    uv_unref(ev_->handle());
  else
    uv_ref(ev_->handle());
}

// Gone means its process is gone: watched through a pidfd (and reaped, when
// it is our child).
void PosixJobProcesses::watch_supervisor(int pid, bool ours, bool weak) {
  sup_pid_ = pid;
  sup_ours_ = ours;
  if (pid <= 0) return;
  uint64_t gen = generation_;
  reaper_.watch(
      pid,
      [this, gen, pid](int code, int sig) {
        if (gen != generation_) return;
        supervisor_gone("pid " + std::to_string(pid) + " ended" +
                        (sig    ? " by signal " + std::to_string(sig)
                         : code ? ", exit status " + std::to_string(code)
                                : ""));
      },
      weak);
}

// The supervisor a previous run of the listener left (its jobs run on).
bool PosixJobProcesses::connect_supervisor(std::string& err) {
  std::string where = supervisor_socket(jobs_dir_);
  int c = connect_unix_blocking(where);
  if (c < 0) {
    err = where + ": " + strerror(errno);
    return false;
  }
  int e = connect_unix_blocking(where);
  if (e < 0 || !write_all(c, make_frame(std::string(1, char(SupMsg::control)))) ||
      !write_all(e, make_frame(std::string(1, char(SupMsg::events))))) {
    err = where + ": " + strerror(errno);
    ::close(c);
    if (e >= 0) ::close(e);
    return false;
  }
  ucred cr{};
  socklen_t len = sizeof cr;
  int pid = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 ? int(cr.pid) : 0;
  ++generation_;
  if (!take_events(e, true, err)) {
    ::close(c);
    return false;
  }
  if (!take_control(c, err)) return false;
  watch_supervisor(pid, false);
  return true;
}

bool PosixJobProcesses::spawn_supervisor(std::string& err) {
  int c[2] = {-1, -1}, e[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, e) != 0) {
    err = std::string("socketpair: ") + strerror(errno);
    for (int fd : {c[0], c[1]})
      if (fd >= 0) ::close(fd);
    return false;
  }
  // Its stderr is ours (its rare complaints reach the listener's log), 3
  // and 4 its connections, and nothing else of the listener's (spawner.h).
  // Its own session: a signal to the listener's process group (a
  // terminal's ^C, a shell's kill) does not reach it, and it outlives the
  // listener.
  static const std::vector<std::string> no_env;
  ProcessSpec ps;
  ps.file = supervisor_;
  ps.argv = {supervisor_, "--jobs-dir", jobs_dir_, "--keep", std::to_string(keep_)};
  ps.env = &no_env;
  ps.fds = {-1, -1, 2, c[1], e[1]};
  ps.new_session = true;
  pid_t pid = -1;
  int rc = spawn_process(ps, pid);
  ::close(c[1]);
  ::close(e[1]);
  if (rc != 0) {
    ::close(c[0]);
    ::close(e[0]);
    err = "cannot start " + supervisor_ + ": " + strerror(rc);
    return false;
  }
  ++generation_;
  running_.clear();
  if (!take_events(e[0], false, err)) {
    ::close(c[0]);
    kill(pid, SIGKILL);
    reaper_.watch(
        pid, [](int, int) {}, true);
    return false;
  }
  if (!take_control(c[0], err)) {
    kill(pid, SIGKILL);
    reaper_.watch(
        pid, [](int, int) {}, true);
    return false;
  }
  watch_supervisor(pid, true);
  spawn_next_ = false;
  log_debug("job supervisor started (pid " + std::to_string(pid) + ")");
  return true;
}

// The supervisor, connected: the one that runs, or a new one.
bool PosixJobProcesses::supervisor(std::string& err) {
  if (ctl_ && ev_) return true;
  if (ctl_) ctl_->discard();
  if (ev_) ev_->discard();
  ctl_ = ev_ = nullptr;
  std::string why;
  // One we let go may still be ending: ours waits for its lock.
  if (spawn_next_ && spawn_supervisor(err)) return true;
  if (connect_supervisor(why)) {
    log_info("re-attached to the job supervisor: " + std::to_string(running_.size()) + " job(s) still run");
    return true;
  }
  if (spawn_supervisor(err)) return true;
  // One that was just ending held its lock; the next one has it now.
  return connect_supervisor(why) || (err += "; " + why, false);
}

}  // namespace jsd
