// The node's job supervisor's loop: poll(2) over every job's two pipes, the
// SIGCHLD signalfd, its socket and the listener's two connections. No
// libuv: it is a small single-purpose process.
#include "job_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "files.h"
#include "frame.h"
#include "job_files.h"
#include "job_supervisor_parts.h"
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
    std::vector<SupJob> list;
    for (auto& [id, j] : jobs_) list.push_back({id, j->pid, j->out.total, j->err.total});
    for (auto& [id, j] : jobs_) j->paused = false;
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
  // learns of, not one it might start again.
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
    for (auto& [id, j] : jobs_) {
      // Its input can never be complete now (the listener held the rest):
      // it must not read a truncated stream as if it were all.
      if (j->input >= 0) {
        close(j->input), j->input = -1;
        if (!j->reaped) ::kill(-j->pid, SIGKILL);
        fprintf(stderr, "jsd-job: job %s: its input was cut (the listener went away mid-input): killed\n", id.c_str());
      }
      if (!j->await_status) continue;
      j->await_status = false;
      j->pidfd = int(syscall(SYS_pidfd_open, j->pid, 0));
      if (j->pidfd < 0) {
        mark_ended(*j);
        j->status_unknown = true;
      }
    }
  }

  void on_control(std::string_view f) {
    if (f.empty()) return;
    if (f[0] == char(SupMsg::start)) {
      SupStart s;
      if (!decode_sup_start(f, s)) return ctl_->queue(encode_sup_end("", failed("malformed start request", false)));
      return start(s);
    }
    if (f[0] == char(SupMsg::adopt)) return adopt(f);
    std::string_view id;
    int sig = 0;
    if (f[0] == char(SupMsg::reaped)) {
      int code = 0;
      if (!decode_sup_reaped(f, id, code, sig)) return;
      auto it = jobs_.find(std::string(id));
      if (it == jobs_.end() || !it->second->adopted || it->second->reaped) return;
      Job& j = *it->second;
      j.status_unknown = code < 0 && sig == 0;
      j.status = sig ? sig : (code & 0xff) << 8;  // as waitpid says it
      mark_ended(j);
      return;
    }
    if (!decode_sup_job(f, id, sig)) return;
    auto it = jobs_.find(std::string(id));
    if (it == jobs_.end()) return;
    Job& j = *it->second;
    if (f[0] == char(SupMsg::kill) && !j.reaped)
      ::kill(-j.pid, sig);
    else if (f[0] == char(SupMsg::pause))
      j.paused = true;
    else if (f[0] == char(SupMsg::resume))
      j.paused = false;
    else if (f[0] == char(SupMsg::input_done) && j.input >= 0)
      close(j.input), j.input = -1;
  }

  void mark_ended(Job& j) {
    if (j.pidfd >= 0) close(j.pidfd), j.pidfd = -1;
    j.reaped = true;
    j.await_status = false;
    j.ended = wall_now();
    j.drain_until = mono_ms() + kDrainMs;
  }

  // A job a supervisor that died started: it runs on (its own session);
  // its output waits in its FIFOs, its directory says how much was kept.
  void adopt(std::string_view f) {
    std::string_view idv;
    int pid = 0;
    bool listener_reaps = false;
    if (!decode_sup_adopt(f, idv, pid, listener_reaps)) return;
    std::string id(idv);
    if (jobs_.count(id) || id.find('/') != std::string::npos || id[0] == '.') return;
    auto j = std::make_unique<Job>();
    j->id = id;
    j->dir = job_dir(o_.jobs_dir, id);
    j->pid = pid;
    j->adopted = true;
    j->out.fd = 1;
    j->err.fd = 2;
    j->dirfd = open(j->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0) return;
    for (Kept* k : {&j->out, &j->err}) {
      k->keep = o_.keep;
      k->seg_max = o_.keep / 4 ? o_.keep / 4 : 1;
      // On from the end on disk, in a new segment; the old ones count
      // against keep as before.
      for (auto& [off, size] : kept_segments(j->dir, k->fd)) k->segs.emplace_back(off, size);
      k->total = k->segs.empty() ? 0 : k->segs.back().first + k->segs.back().second;
      k->pipe = open(job_fifo(j->dir, k->fd).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (listener_reaps) {
      j->await_status = true;
    } else {
      j->pidfd = int(syscall(SYS_pidfd_open, pid, 0));
      if (j->pidfd < 0) mark_ended(*j), j->status_unknown = true;
    }
    jobs_[id] = std::move(j);
  }

  static JobEnd failed(const std::string& why, bool command) {
    JobEnd e;
    e.known = true;
    e.error = why;
    e.command = command;
    e.ended = wall_now();
    return e;
  }

  // The job's directory is the mark of a started id (job_files.h): made
  // whole under a temporary name and renamed into place just before the
  // job is spawned, so a listener that finds it knows this supervisor took
  // the job, and one that does not may start it (it never ran).
  void start(const SupStart& s) {
    auto refuse = [&](const std::string& why) { ctl_->queue(encode_sup_end("", failed(why, false))); };
    if (s.id.find('/') != std::string::npos || s.id[0] == '.') return refuse("bad job id '" + s.id + "'");
    std::string dir = job_dir(o_.jobs_dir, s.id), tmp = o_.jobs_dir + "/" + s.id + ".new", err;
    remove_job_dir(tmp);  // a previous attempt's, cut short before its rename: it never ran
    if (mkdir(tmp.c_str(), 0700) != 0) return refuse("cannot create " + tmp + ": " + strerror(errno));
    // No temporary file and rename for job.json: the whole directory is
    // renamed into place once it is complete.
    int rfd = open((tmp + "/job.json").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool written = rfd >= 0 && write(rfd, s.record.data(), s.record.size()) == ssize_t(s.record.size());
    if (rfd >= 0 && close(rfd) != 0) written = false;
    if (!written) {
      err = "cannot write " + tmp + "/job.json: " + strerror(errno);
      remove_job_dir(tmp);
      return refuse(err);
    }
    // The job's stdout and stderr (job_files.h): FIFOs, so that the next
    // supervisor finds them by name if this one dies.
    for (int fd : {0, 1, 2}) {
      if (fd == 0 && !s.input) continue;
      std::string f = job_fifo(tmp, fd);
      if (mkfifo(f.c_str(), 0600) != 0) {
        err = "cannot create " + f + ": " + strerror(errno);
        remove_job_dir(tmp);
        return refuse(err);
      }
    }
    if (rename(tmp.c_str(), dir.c_str()) != 0) {
      int e = errno;
      remove_job_dir(tmp);
      return refuse(e == EEXIST || e == ENOTEMPTY ? "job " + s.id + " was started here before"
                                                  : "cannot create " + dir + ": " + strerror(e));
    }
    auto j = std::make_unique<Job>();
    j->id = s.id;
    j->dir = dir;
    j->out.fd = 1;
    j->err.fd = 2;
    for (Kept* k : {&j->out, &j->err}) {
      k->keep = o_.keep;
      // Four segments a stream: between 3/4 and all of keep is kept.
      k->seg_max = o_.keep / 4 ? o_.keep / 4 : 1;
    }
    j->dirfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool command = false;
    if (j->dirfd < 0) {
      err = dir + ": " + strerror(errno);
    } else if (spawn(*j, s, err, command)) {
      std::string m(1, char(SupMsg::started));
      WireWriter(m, 4).u32(uint32_t(j->pid));
      ctl_->queue(m);
      // Found again by whoever comes after us (job_files.h).
      if (!write_job_pid(dir, j->pid, process_start_ticks(j->pid)))
        fprintf(stderr, "jsd-job: error: cannot write %s/pid: %s\n", dir.c_str(), strerror(errno));
      by_pid_[j->pid] = j.get();
      jobs_[s.id] = std::move(j);
      return;
    }
    // How it did not start is on disk too: a restarted listener that finds
    // the directory reads it there.
    JobEnd e = failed(err, command);
    std::string werr;
    write_file_atomic(dir + "/end.json", job_end_text(e), true, werr);
    if (j->dirfd >= 0) close(j->dirfd);
    ctl_->queue(encode_sup_end("", e));
  }

  bool spawn(Job& j, const SupStart& s, std::string& err, bool& command) {
    int lookup = 0;
    std::string prog = find_program(s.argv[0], s.env, lookup);
    if (prog.empty()) {
      command = true;
      err = s.argv[0] + ": " + strerror(lookup);
      return false;
    }
    // Our read ends first (a FIFO opened for reading alone, non-blocking,
    // does not wait for a writer), then the job's ends, read-write: the job
    // itself keeps a reader, so its writes never raise SIGPIPE, whoever of
    // jsd dies (job_files.h).
    int out[2] = {-1, -1}, er[2] = {-1, -1};
    auto close_all = [&] {
      for (int fd : {out[0], out[1], er[0], er[1]})
        if (fd >= 0) close(fd);
    };
    for (int k : {1, 2}) {
      int* e = k == 1 ? out : er;
      std::string f = job_fifo(j.dir, k);
      e[0] = open(f.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (e[0] >= 0) e[1] = open(f.c_str(), O_RDWR | O_CLOEXEC);
      if (e[1] < 0) {
        err = f + ": " + strerror(errno);
        close_all();
        return false;
      }
    }
    // Its input: a FIFO of which we hold a write end (so the job's open
    // does not wait for a writer, and sees the end only once the input is
    // complete), or nothing.
    std::string in_path = s.input ? job_fifo(j.dir, 0) : "/dev/null";
    int in = s.input ? open(in_path.c_str(), O_RDWR | O_CLOEXEC) : -1;
    if (s.input && in < 0) {
      err = in_path + ": " + strerror(errno);
      close_all();
      return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    // A job gets descriptors 0-2 and nothing else (close_range in the child).
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!s.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, s.cwd.c_str());
    // A job starts clean: its own session (its process group is signalled
    // as one, and is not ours), no blocked signals, default dispositions.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv, envp;
    for (auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : s.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, prog.c_str(), &fa, &at, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(er[1]);
    if (rc != 0 && in >= 0) close(in);
    j.input = rc == 0 ? in : -1;
    if (rc != 0) {
      close(out[0]);
      close(er[0]);
      // The system's limits are jsd's failure; anything else is the command's.
      command = !(rc == EAGAIN || rc == ENOMEM || rc == EMFILE || rc == ENFILE || rc == ENOSYS);
      err = s.argv[0] + ": " + strerror(rc);
      return false;
    }
    j.pid = pid;
    j.out.pipe = out[0];
    j.err.pipe = er[0];
    return true;
  }

  void read_pipe(Job& j, Kept& k) {
    char buf[65536];
    ssize_t n = read(k.pipe, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      close(k.pipe);
      k.pipe = -1;
      return;
    }
    k.append(j.dirfd, buf, size_t(n));
    if (ev_) ev_->queue(encode_sup_output(j.id, k.fd, std::string_view(buf, size_t(n))));
  }

  void reap() {
    signalfd_siginfo si;
    while (read(sigfd_, &si, sizeof si) > 0) {
    }
    for (;;) {
      int st = 0;
      pid_t got = waitpid(-1, &st, WNOHANG);
      if (got <= 0) return;
      auto it = by_pid_.find(got);
      if (it == by_pid_.end()) continue;
      Job& j = *it->second;
      by_pid_.erase(it);
      j.reaped = true;
      j.status = st;
      j.ended = wall_now();
      j.drain_until = mono_ms() + kDrainMs;
    }
  }

  // The end goes to the listener first (it answers at once), then to disk
  // durably; only then is the job forgotten (a listener that connects
  // later reads end.json instead).
  void finish(Job& j) {
    // A background process that keeps the pipes open is not the job.
    JobEnd e;
    e.known = true;
    e.ended = j.ended;
    if (j.status_unknown)
      e.exit_code = -1;  // it ended; nobody could say how
    else if (WIFSIGNALED(j.status))
      e.signal = WTERMSIG(j.status);
    else
      e.exit_code = WEXITSTATUS(j.status);
    e.out_bytes = j.out.total;
    e.err_bytes = j.err.total;
    e.out_dropped = j.out.dropped();
    e.err_dropped = j.err.dropped();
    j.out.close_all();
    j.err.close_all();
    if (ev_) {
      ev_->queue(encode_sup_end(j.id, e));
      if (!ev_->flush()) ev_.reset();
    }
    std::string err;
    if (write_file_atomic(j.dir + "/end.json", job_end_text(e), false, err))
      syncer_.push(j.dir + "/end.json");
    else
      fprintf(stderr, "jsd-job: error: %s\n", err.c_str());
    close(j.dirfd);
  }

  enum Kind { kPipeOut, kPipeErr, kSig, kListen, kCtl, kEv, kFresh, kPidfd };

  int loop() {
    std::vector<pollfd> p;
    std::vector<std::pair<Kind, void*>> what;
    for (;;) {
      if (ctl_ && !ctl_->flush()) lost_listener();
      if (ev_ && !ev_->flush()) ev_.reset();
      int64_t now = mono_ms(), next = -1;
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        Job& j = *it->second;
        bool done = j.reaped && ((j.out.pipe < 0 && j.err.pipe < 0) || now >= j.drain_until);
        if (!done) {
          ++it;
          continue;
        }
        if (j.input >= 0) close(j.input), j.input = -1;
        finish(j);
        it = jobs_.erase(it);
      }
      if (!ctl_ && !ev_ && fresh_.empty() && jobs_.empty()) break;
      p.clear();
      what.clear();
      auto add = [&](int fd, short events, Kind k, void* x) {
        p.push_back({fd, events, 0});
        what.emplace_back(k, x);
      };
      // While the listener does not take the output, the jobs wait (their
      // pipes fill): backpressure. With no listener, output goes to disk.
      bool room = !ev_ || ev_->out.size() < kForwardMax;
      for (auto& [id, jp] : jobs_) {
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
            read_pipe(*static_cast<Job*>(x), static_cast<Job*>(x)->out);
            break;
          case kPipeErr:
            read_pipe(*static_cast<Job*>(x), static_cast<Job*>(x)->err);
            break;
          case kSig:
            reap();
            break;
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
          case kPidfd: {
            Job& j = *static_cast<Job*>(x);
            mark_ended(j);
            j.status_unknown = true;
            break;
          }
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
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  std::map<pid_t, Job*> by_pid_;
  std::unique_ptr<Conn> ctl_, ev_;  // the listener's (none while it is away)
  std::vector<std::unique_ptr<Conn>> fresh_;
  int sigfd_ = -1, lsock_ = -1, lockfd_ = -1;
  Syncer syncer_;  // joined (every end synced) before the process ends
};

}  // namespace

int run_supervisor(const SupervisorOptions& o) { return Supervisor(o).run(); }

}  // namespace jsd
