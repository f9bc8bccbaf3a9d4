// The node's job supervisor's loop and its connections: poll(2) over every
// job's two pipes, the SIGCHLD signalfd, its socket and the listener's two
// connections. The jobs themselves are the job table's (job_table.h). No
// libuv: it is a small single-purpose process.
#include "job_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>

#include "files.h"
#include "frame.h"
#include "job_files.h"
#include "job_spare.h"
#include "job_supervisor_parts.h"
#include "job_table.h"
#include "wire.h"

namespace jsd {

bool parse_supervisor_args(int argc, char** argv, SupervisorOptions& o, std::string& err) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      err = "option " + a + " needs a value";
      return false;
    }
    std::string v = argv[++i];
    if (a == "--jobs-dir") {
      o.jobs_dir = v;
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
  if (o.jobs_dir.empty()) {
    err = "usage: jsd-job --jobs-dir DIR --keep BYTES";
    return false;
  }
  return true;
}

using namespace supervisor_parts;

namespace {

class Supervisor {
 public:
  explicit Supervisor(const SupervisorOptions& o) : o_(o) {}

  int run() {
    signal(SIGPIPE, SIG_IGN);  // a listener that died is EPIPE, not our death
    // A job's background processes that outlive it are ours to reap (the
    // listener is a subreaper too, for the jobs themselves should we die).
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    // Nothing of the listener's but the two connections reaches a job
    // (a job gets descriptors 0-2 only).
    int top = std::max(o_.control_fd, o_.events_fd);
    if (syscall(SYS_close_range, top + 1, ~0U, 0) != 0)
      for (int fd = top + 1; fd < 1024; ++fd) close(fd);
    if (!lock()) return 1;
    remove_spares(o_.jobs_dir);  // a killed predecessor's (we hold the lock)
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, nullptr);
    sigfd_ = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd_ < 0) return fail(std::string("signalfd: ") + strerror(errno));
    if (!listen_socket()) return fail("cannot listen on " + supervisor_socket(o_.jobs_dir) + ": " + strerror(errno));
    for (int fd : {o_.control_fd, o_.events_fd})
      if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return fail("no connection to the listener on " + std::to_string(fd));
    ctl_ = std::make_unique<Conn>(o_.control_fd);
    set_events(std::make_unique<Conn>(o_.events_fd));
    return loop();
  }

 private:
  int fail(const std::string& why) {
    fprintf(stderr, "jsd-job: error: %s\n", why.c_str());
    return 1;
  }

  // One supervisor per jobs directory. One that is just ending (its last
  // listener went, its last job ended) still holds the lock for a moment.
  bool lock() {
    std::string path = o_.jobs_dir + "/supervisor.lock";
    lockfd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd_ < 0) return fail(path + ": " + strerror(errno)), false;
    for (int64_t until = mono_ms() + kLockWaitMs;;) {
      if (flock(lockfd_, LOCK_EX | LOCK_NB) == 0) return true;
      if (errno != EWOULDBLOCK || mono_ms() >= until) break;
      poll(nullptr, 0, 5);
    }
    return fail("another jsd-job supervises the jobs of " + o_.jobs_dir), false;
  }

  bool listen_socket() {
    int dfd = -1;
    std::string path = unix_socket_path(supervisor_socket(o_.jobs_dir), dfd);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty()) return false;
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    lsock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    unlink(path.c_str());  // a previous supervisor's (we hold the lock: it is gone)
    mode_t old = umask(0077);
    bool ok = lsock_ >= 0 && bind(lsock_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(lsock_, 8) == 0;
    int e = errno;
    umask(old);
    if (dfd >= 0) close(dfd);
    errno = e;
    return ok;
  }

  // A listener's events connection: it learns every job and where each
  // one's output goes on from; the old connection, if any, is replaced.
  void set_events(std::unique_ptr<Conn> c) {
    std::vector<SupJob> list = table_.list_for_new_listener();
    ev_ = std::move(c);
    ev_->queue(encode_sup_jobs(list));
  }

  void accept_conn() {
    int c = accept4(lsock_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;
    // Only our own user's processes (the socket is 0600 in a 0700
    // directory as well): a connection may start any command.
    ucred cr{};
    socklen_t len = sizeof cr;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.uid != geteuid()) {
      close(c);
      return;
    }
    fresh_.push_back(std::make_unique<Conn>(c));
  }

  // A fresh connection says which one it is in its first frame.
  void read_fresh(size_t i) {
    std::vector<std::string> frames;
    bool ok = fresh_[i]->read(frames);
    if (ok && frames.empty()) return;
    auto c = std::move(fresh_[i]);
    fresh_.erase(fresh_.begin() + long(i));
    if (!ok || frames[0].size() != 1) return;
    if (frames[0][0] == char(SupMsg::control)) {
      drain_control();
      ctl_ = std::move(c);
      for (size_t k = 1; k < frames.size() && ctl_; ++k) on_control(frames[k]);
    } else if (frames[0][0] == char(SupMsg::events) && frames.size() == 1) {
      set_events(std::move(c));
    }
  }

  // A new listener's control connection replaces the old one: what the old
  // listener sent before it died is taken first (it is all in the socket
  // buffer by now), so that a start it asked for is a job the new one
  // learns of, not one it might start again. No bound: a dead peer writes
  // no more than its socket buffer holds (SupervisorDrain in
  // job_supervisor_test.cpp holds this to it).
  void drain_control() {
    while (ctl_) {
      pollfd p{ctl_->fd, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) break;
      read_control();
    }
    lost_listener();
  }

  void read_control() {
    std::vector<std::string> frames;
    bool ok = ctl_->read(frames);
    for (auto& f : frames) on_control(f);
    if (!ok) lost_listener();
  }

  // The listener is gone: its jobs go on. The adopted ones it would have
  // reaped can only be seen to end now.
  void lost_listener() {
    ctl_.reset();
    table_.listener_gone();
  }

  void on_control(std::string_view f) {
    if (f.empty()) return;
    std::string_view id;
    int sig = 0;
    switch (SupMsg(f[0])) {
      case SupMsg::start: {
        SupStart s;
        if (!decode_sup_start(f, s))
          return ctl_->queue(encode_sup_end("", failed_end("malformed start request", false)));
        return ctl_->queue(table_.start(s));
      }
      case SupMsg::adopt: {
        int pid = 0;
        bool listener_reaps = false;
        if (decode_sup_adopt(f, id, pid, listener_reaps)) table_.adopt(id, pid, listener_reaps);
        return;
      }
      case SupMsg::reaped: {
        int code = 0;
        if (decode_sup_reaped(f, id, code, sig)) table_.reaped(id, code, sig);
        return;
      }
      case SupMsg::kill:
      case SupMsg::pause:
      case SupMsg::resume:
      case SupMsg::input_done:
        if (!decode_sup_job(f, id, sig)) return;
        if (f[0] == char(SupMsg::kill))
          table_.signal(id, sig);
        else if (f[0] == char(SupMsg::input_done))
          table_.input_done(id);
        else
          table_.pause(id, f[0] == char(SupMsg::pause));
        return;
      default:
        return;
    }
  }

  enum Kind { kPipeOut, kPipeErr, kSig, kListen, kCtl, kEv, kFresh, kPidfd };

  int loop() {
    std::vector<pollfd> p;
    std::vector<std::pair<Kind, void*>> what;
    for (;;) {
      if (ctl_ && !ctl_->flush()) lost_listener();
      if (ev_ && !ev_->flush()) ev_.reset();
      // After the answers are sent: the next start's directory.
      table_.prepare_spare();
      int64_t now = mono_ms(), next = -1;
      table_.finish_ended(now, ev_);
      if (!ctl_ && !ev_ && fresh_.empty() && table_.empty()) break;
      p.clear();
      what.clear();
      auto add = [&](int fd, short events, Kind k, void* x) {
        p.push_back({fd, events, 0});
        what.emplace_back(k, x);
      };
      // While the listener does not take the output, the jobs wait (their
      // pipes fill): backpressure. With no listener, output goes to disk.
      bool room = !ev_ || ev_->out.size() < kForwardMax;
      for (auto& [id, jp] : table_.jobs()) {
        Job& j = *jp;
        bool take = room && !(j.paused && ev_);
        if (j.reaped && !take) j.drain_until = now + kDrainMs;  // waiting for room is not draining
        if (j.reaped) next = next < 0 ? j.drain_until - now : std::min(next, j.drain_until - now);
        if (!take) continue;
        if (j.pidfd >= 0) add(j.pidfd, POLLIN, kPidfd, &j);
        if (j.out.pipe >= 0) add(j.out.pipe, POLLIN, kPipeOut, &j);
        if (j.err.pipe >= 0) add(j.err.pipe, POLLIN, kPipeErr, &j);
      }
      add(sigfd_, POLLIN, kSig, nullptr);
      add(lsock_, POLLIN, kListen, nullptr);
      if (ctl_) add(ctl_->fd, short(POLLIN | (ctl_->out.empty() ? 0 : POLLOUT)), kCtl, nullptr);
      // Nothing is read from the events connection: POLLIN there is its end.
      if (ev_) add(ev_->fd, short(POLLIN | (ev_->out.empty() ? 0 : POLLOUT)), kEv, nullptr);
      for (size_t i = 0; i < fresh_.size(); ++i) add(fresh_[i]->fd, POLLIN, kFresh, reinterpret_cast<void*>(i));
      int rc = poll(p.data(), nfds_t(p.size()), next < 0 ? -1 : int(std::max<int64_t>(0, next)));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return fail(std::string("poll: ") + strerror(errno));
      // Fresh connections from the end: reading one may remove it.
      for (size_t i = p.size(); i-- > 0;) {
        if (!p[i].revents) continue;
        auto [k, x] = what[i];
        switch (k) {
          case kPipeOut:
            table_.read_pipe(*static_cast<Job*>(x), static_cast<Job*>(x)->out, ev_.get());
            break;
          case kPipeErr:
            table_.read_pipe(*static_cast<Job*>(x), static_cast<Job*>(x)->err, ev_.get());
            break;
          case kSig: {
            signalfd_siginfo si;
            while (read(sigfd_, &si, sizeof si) > 0) {
            }
            table_.reap();
            break;
          }
          case kListen:
            accept_conn();
            break;
          case kCtl:
            if (ctl_ && p[i].revents & (POLLIN | POLLHUP | POLLERR)) read_control();
            break;
          case kEv:
            if (ev_ && p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
              char b[256];
              ssize_t n = recv(ev_->fd, b, sizeof b, MSG_DONTWAIT);
              if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) ev_.reset();
            }
            break;
          case kFresh:
            read_fresh(reinterpret_cast<size_t>(x));
            break;
          case kPidfd:
            table_.pidfd_ended(*static_cast<Job*>(x));
            break;
        }
      }
    }
    // From here a listener that connects finds no socket and starts a new
    // supervisor, which waits for our lock.
    int dfd = -1;
    std::string path = unix_socket_path(supervisor_socket(o_.jobs_dir), dfd);
    close(lsock_);
    if (!path.empty()) unlink(path.c_str());
    if (dfd >= 0) close(dfd);
    return 0;
  }

  const SupervisorOptions& o_;
  JobTable table_{o_.jobs_dir, o_.keep};
  std::unique_ptr<Conn> ctl_, ev_;  // the listener's (none while it is away)
  std::vector<std::unique_ptr<Conn>> fresh_;
  int sigfd_ = -1, lsock_ = -1, lockfd_ = -1;
};

}  // namespace

int run_supervisor(const SupervisorOptions& o) { return Supervisor(o).run(); }

}  // namespace jsd
