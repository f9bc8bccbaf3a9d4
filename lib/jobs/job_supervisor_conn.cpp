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
#include <utility>

#include "files.h"
#include "frame.h"
#include "job_spawn.h"
#include "job_spawn_sup.h"
#include "log.h"
#include "spawner.h"
#include "uvx.h"
#include "wire.h"

namespace jsd {

namespace {

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
  if (sup_ours_ || (!ctl_ && !ev_) || awaiting_list_) return;
  ++generation_;
  if (ctl_) ctl_->discard();
  if (ev_) ev_->discard();
  ctl_ = ev_ = nullptr;
  sup_pid_ = 0;
  queued_.clear();
  running_.clear();
  spawn_next_ = true;
}

// The supervisor's first message lists the jobs it runs (none, for one we
// just spawned); the rest are events. Nothing waits for that list: a slow
// or stopped supervisor holds up the adoption of its jobs (when_ready),
// never the listener.
bool PosixJobProcesses::take_events(int fd, std::string& err) {
  running_.clear();
  awaiting_list_ = true;
  list_asked_ms_ = now_ms();
  ev_ = Stream::open_fd(loop_, fd, err);
  if (!ev_) {
    ::close(fd);
    return false;
  }
  auto listed_yet = std::make_shared<bool>(false);
  ev_->on_frame = [this, listed_yet](std::string_view p) {
    if (!*listed_yet) {
      *listed_yet = true;
      return listed(p);
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
    if (!sups_.empty() || !pending_.empty() || awaiting_list_) watch_supervisor(sup_pid_, sup_ours_, false);
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

void PosixJobProcesses::listed(std::string_view list) {
  std::vector<SupJob> jobs;
  if (!decode_sup_jobs(list, jobs)) log_error("the job supervisor's list of jobs is garbled; taken as none");
  for (auto& j : jobs) running_[j.id] = j;
  if (!running_.empty())
    log_info("the job supervisor (pid " + std::to_string(sup_pid_) + ") runs " + std::to_string(running_.size()) +
             " job(s) of a previous run");
  awaiting_list_ = false;
  ready();
  review_slow();
}

// The list is read, or will never be (the supervisor is gone): the jobs it
// may have run are adopted now; one that runs none of ours is let go.
void PosixJobProcesses::ready() {
  for (auto& fn : std::exchange(when_ready_, {})) fn();
  hold_loop();
  if (ctl_ && !sup_ours_ && sups_.empty() && pending_.empty()) retire();
}

// The supervisor a previous run left, if one runs: connected to here, at
// start-up; the jobs it runs are adopted once it has listed them.
void PosixJobProcesses::when_ready(std::function<void()> fn) {
  std::string why;
  if (!ctl_ && !ev_ && !connect_supervisor(why)) log_debug("no job supervisor runs: " + why);
  if (!awaiting_list_) return fn();
  when_ready_.push_back(std::move(fn));
  hold_loop();
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

// What waits for the supervisor: the starts not answered, and its list of
// jobs on connection. The timer is set only while something waits (a start
// is answered in milliseconds: it rarely fires), and never holds the loop.
size_t PosixJobProcesses::waiting(uint64_t& oldest) const {
  for (auto& st : pending_) oldest = std::min(oldest, st->sent_ms);
  if (awaiting_list_) oldest = std::min(oldest, list_asked_ms_);
  return pending_.size() + (awaiting_list_ ? 1 : 0);
}

void PosixJobProcesses::review_slow() {
  uint64_t now = now_ms(), oldest = now;
  size_t waiting = this->waiting(oldest);
  std::string line = slow_.review(now, oldest, waiting, sup_pid_);
  if (!line.empty()) (slow_.slow() ? log_error(line) : log_info(line));
  // Woken when the oldest turns late; once slow, its answer (an event) ends it.
  if (!waiting || slow_.slow()) return slow_timer_.stop();
  uint64_t late_in = slow_.after_ms() - std::min(slow_.after_ms(), now - oldest);
  if (slow_timer_.start(late_in + 1, [this] { review_slow(); }) == 0) slow_timer_.weak();
}

SupervisorState PosixJobProcesses::supervisor_state() {
  uint64_t now = now_ms(), oldest = now;
  size_t n = waiting(oldest);
  return slow_.state(now, oldest, n, sup_pid_);
}

void PosixJobProcesses::hold_loop() {
  if (!ev_) return;
  if (sups_.empty() && pending_.empty() && (!awaiting_list_ || when_ready_.empty()))
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
  sup_pid_ = pid;
  if (!take_events(e, err)) {
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
  sup_pid_ = pid;
  if (!take_events(e[0], err)) {
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
    log_info("re-attached to the job supervisor (pid " + std::to_string(sup_pid_) + ")");
    return true;
  }
  if (spawn_supervisor(err)) return true;
  // One that was just ending held its lock; the next one has it now.
  return connect_supervisor(why) || (err += "; " + why, false);
}

}  // namespace jsd
