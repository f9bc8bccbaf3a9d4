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

namespace {

constexpr int kDrainMs = 2000;             // output after the job's exit (see job_run.cpp)
constexpr size_t kForwardMax = 256 << 10;  // unsent to the listener: stop reading the jobs
constexpr size_t kMaxFrame = 16 << 20;     // a start request (argv and environment)
constexpr int kLockWaitMs = 2000;          // for a supervisor that is just ending

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

// The executable a job's argv[0] names, looked up in the job's own PATH
// as execvp would (the supervisor's environment is not the job's).
std::string find_program(const std::string& name, const std::vector<std::string>& env, int& err) {
  err = 0;
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (auto& e : env)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  int first_err = ENOENT;
  size_t at = 0;
  for (;;) {
    size_t colon = path.find(':', at);
    std::string d = path.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
    std::string p = (d.empty() ? "." : d) + "/" + name;
    struct stat st;
    if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(p.c_str(), X_OK) == 0) return p;
      first_err = EACCES;
    }
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  err = first_err;
  return "";
}

// Makes written files durable off the loop: an fsync costs milliseconds on
// a VM, and the next job's start (a listener waiting for its answer) must
// not wait behind the last job's end. A file is complete and renamed into
// place before it gets here, so a process crash loses nothing; only a power
// cut in the moment before its fsync can (the listener then finds no end
// and records the job lost).
class Syncer {
 public:
  // The thread takes no signal: SIGCHLD must stay pending for the loop's
  // signalfd (a thread with it unblocked would swallow it, and a job's
  // end would go unnoticed).
  Syncer() {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    t_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~Syncer() {
    {
      std::lock_guard<std::mutex> l(m_);
      done_ = true;
    }
    cv_.notify_one();
    t_.join();
  }
  void push(std::string path) {
    {
      std::lock_guard<std::mutex> l(m_);
      q_.push_back(std::move(path));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> l(m_);
    for (;;) {
      cv_.wait(l, [this] { return done_ || !q_.empty(); });
      if (q_.empty()) return;
      std::string path = std::move(q_.front());
      q_.pop_front();
      l.unlock();
      for (const std::string& p : {path, path.substr(0, path.rfind('/'))}) {
        int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) fsync(fd), close(fd);
      }
      l.lock();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> q_;
  bool done_ = false;
  std::thread t_;
};

class Supervisor {
 public:
  explicit Supervisor(const SupervisorOptions& o) : o_(o) {}

  int run() {
    signal(SIGPIPE, SIG_IGN);  // a listener that died is EPIPE, not our death
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
    ctl_.reset();
  }

  void read_control() {
    std::vector<std::string> frames;
    bool ok = ctl_->read(frames);
    for (auto& f : frames) on_control(f);
    if (!ok) ctl_.reset();  // the listener is gone: its jobs go on
  }

  void on_control(std::string_view f) {
    if (f.empty()) return;
    if (f[0] == char(SupMsg::start)) {
      SupStart s;
      if (!decode_sup_start(f, s)) return ctl_->queue(encode_sup_end("", failed("malformed start request", false)));
      return start(s);
    }
    std::string_view id;
    int sig = 0;
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
    int out[2], er[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      err = std::string("pipe: ") + strerror(errno);
      return false;
    }
    if (pipe2(er, O_CLOEXEC) != 0) {
      err = std::string("pipe: ") + strerror(errno);
      close(out[0]);
      close(out[1]);
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
    fcntl(j.out.pipe, F_SETFL, O_NONBLOCK);
    fcntl(j.err.pipe, F_SETFL, O_NONBLOCK);
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
    if (WIFSIGNALED(j.status))
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

  enum Kind { kPipeOut, kPipeErr, kSig, kListen, kCtl, kEv, kFresh };

  int loop() {
    std::vector<pollfd> p;
    std::vector<std::pair<Kind, void*>> what;
    for (;;) {
      if (ctl_ && !ctl_->flush()) ctl_.reset();
      if (ev_ && !ev_->flush()) ev_.reset();
      int64_t now = mono_ms(), next = -1;
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        Job& j = *it->second;
        bool done = j.reaped && ((j.out.pipe < 0 && j.err.pipe < 0) || now >= j.drain_until);
        if (!done) {
          ++it;
          continue;
        }
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
