#include "job_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "files.h"
#include "job_supervisor.h"
#include "log.h"
#include "uvx.h"
#include "wire.h"

namespace jsd {

struct Reaper::PidWatch {
  uv_poll_t poll;
  int fd = -1;
  int pid = 0;
  std::function<void(int, int)> cb;
  Reaper* owner = nullptr;
};

namespace {
void decode_status(int st, int& code, int& sig) {
  code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
  sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}
void close_watch(uv_poll_t* p) {
  uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) {
    auto* w = static_cast<Reaper::PidWatch*>(h->data);
    ::close(w->fd);
    delete w;
  });
}
}  // namespace

Reaper::Reaper(uv_loop_t* loop) : loop_(loop), sig_(new uv_signal_t) {
  int rc = uv_signal_init(loop, sig_);
  sig_inited_ = rc == 0;
  if (rc == 0) {
    sig_->data = this;
    rc = uv_signal_start(
        sig_, [](uv_signal_t* h, int) { static_cast<Reaper*>(h->data)->reap(); }, SIGCHLD);
    uv_unref(reinterpret_cast<uv_handle_t*>(sig_));
  }
  // Jobs are still reaped where pidfds work (Linux 5.3 and later).
  if (rc != 0) log_error("cannot watch SIGCHLD: " + uv_error(rc));
}

Reaper::~Reaper() {
  for (auto& [w, b] : polls_) {
    uv_poll_stop(&w->poll);
    close_watch(&w->poll);
  }
  if (!sig_inited_) {
    delete sig_;
    return;
  }
  uv_signal_stop(sig_);
  uv_close(reinterpret_cast<uv_handle_t*>(sig_), [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
}

void Reaper::watch(int pid, std::function<void(int, int)> on_exit, bool weak) {
  // glibc 2.36 declares pidfd_open without C linkage for C++; ask the kernel.
  int fd = int(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    auto* w = new PidWatch;
    w->fd = fd;
    w->pid = pid;
    w->cb = std::move(on_exit);
    w->owner = this;
    if (uv_poll_init(loop_, &w->poll, fd) == 0) {
      w->poll.data = w;
      int rc = uv_poll_start(&w->poll, UV_READABLE, [](uv_poll_t* p, int, int) {
        auto* pw = static_cast<PidWatch*>(p->data);
        int st = 0;
        pid_t got;
        do got = waitpid(pw->pid, &st, WNOHANG);
        while (got < 0 && errno == EINTR);
        if (got == 0) return;  // not yet (a spurious wake-up)
        uv_poll_stop(p);
        auto cb = std::move(pw->cb);
        pw->owner->polls_.erase(pw);
        close_watch(p);
        int code = 255, sig = 0;
        if (got > 0) decode_status(st, code, sig);
        cb(code, sig);
      });
      if (rc == 0) {
        if (weak) uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
        polls_[w] = true;
        return;
      }
      // Watch it the SIGCHLD way instead (the poll handle closes the pidfd).
      on_exit = std::move(w->cb);
      close_watch(&w->poll);
    } else {
      on_exit = std::move(w->cb);
      ::close(fd);
      delete w;
    }
  }
  watched_[pid] = std::move(on_exit);
  // It may have exited before we watched it: look once now.
  reap();
}

void Reaper::reap() {
  // Collect first, call after: a callback may start (and watch) a new job.
  std::vector<std::pair<std::function<void(int, int)>, std::pair<int, int>>> done;
  for (auto it = watched_.begin(); it != watched_.end();) {
    int st = 0;
    pid_t got;
    do got = waitpid(it->first, &st, WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == 0 || (got < 0 && errno != ECHILD)) {
      ++it;
      continue;
    }
    std::pair<int, int> how = got < 0           ? std::make_pair(255, 0)  // not ours any more: lost
                              : WIFSIGNALED(st) ? std::make_pair(0, WTERMSIG(st))
                                                : std::make_pair(WEXITSTATUS(st), 0);
    done.emplace_back(std::move(it->second), how);
    it = watched_.erase(it);
  }
  for (auto& [fn, how] : done) fn(how.first, how.second);
}

namespace {

constexpr int kReplyMs = 10000;  // a start is a posix_spawn away; a supervisor silent this long is hung

// Reads one frame from a blocking socket (a reply of the supervisor, or
// its first message). False on EOF, a timeout or garbage.
bool read_frame(int fd, std::string& payload, int timeout_ms, size_t max = 1 << 16) {
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

// One job as the supervisor reports it; shared with its JobProcess and
// kept by id in the PosixJobProcesses while the job runs.
struct PosixJobProcesses::Sup {
  PosixJobProcesses* owner = nullptr;  // null once it is gone
  std::string id, dir;
  JobEvents ev;
  int pid = 0;
  uint64_t first[2] = {0, 0};
  bool gone = false, ended = false, out_open = true, err_open = true;

  void close_streams() {
    for (int fd : {1, 2}) {
      bool& open = fd == 1 ? out_open : err_open;
      if (!open || gone) continue;
      open = false;
      auto f = ev.output_closed;
      if (f) f(fd);
    }
  }
  // The end, once: from the E message, end.json, or nothing (lost).
  void deliver(const JobEnd& e) {
    if (ended || gone) return;
    ended = true;
    if (owner) owner->forget(id);
    if (ev.end && e.known) ev.end(e);
    if (gone) return;
    close_streams();
    if (gone) return;
    auto f = ev.exited;
    if (!f) return;
    if (!e.known || !e.error.empty())
      f(-1, 0);
    else
      f(e.signal ? 0 : e.exit_code, e.signal);
  }
  void output(int fd, std::string_view bytes) {
    if (gone || ended || !ev.output) return;
    auto f = ev.output;
    f(fd, bytes);
  }
};

namespace {
class SupervisedJob : public JobProcess {
 public:
  explicit SupervisedJob(std::shared_ptr<PosixJobProcesses::Sup> st) : st_(std::move(st)) {}
  ~SupervisedJob() override {
    st_->gone = true;  // not cleared: one of its functions may be running right now
    if (st_->owner) st_->owner->forget(st_->id);
  }
  int pid() const override { return st_->pid; }
  void run(JobEvents events) override { st_->ev = std::move(events); }
  void pause_output() override { tell(SupMsg::pause); }
  void resume_output() override { tell(SupMsg::resume); }
  // The supervisor drains the pipes itself; only the reports are left.
  void close_output() override {
    auto st = st_;
    st->close_streams();
  }
  uint64_t first_offset(int fd) const override { return st_->first[fd == 2 ? 1 : 0]; }

 private:
  void tell(SupMsg m) {
    if (st_->owner && !st_->ended) st_->owner->control(encode_sup_job(m, st_->id));
  }
  std::shared_ptr<PosixJobProcesses::Sup> st_;
};
}  // namespace

PosixJobProcesses::~PosixJobProcesses() {
  bool idle = sups_.empty();
  for (auto& [id, st] : sups_) st->owner = nullptr;
  // The supervisor goes on with the jobs, if any; it ends itself once it
  // has none and no listener. (uv_close closes the stream's descriptor at
  // once: it sees both connections end now.)
  if (ctl_ >= 0) ::close(ctl_);
  if (ev_) ev_->discard();
  // A listener that stops in order has ended its jobs: it reaps the
  // supervisor it started rather than leave it to init (and the state
  // directory is quiet once it is gone).
  if (!idle || sup_pid_ <= 0) return;
  int fd = int(syscall(SYS_pidfd_open, sup_pid_, 0));
  if (fd < 0) return;
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, 2000);
  while (rc < 0 && errno == EINTR);
  ::close(fd);
  if (rc > 0) waitpid(sup_pid_, nullptr, WNOHANG);
}

bool PosixJobProcesses::control(const std::string& payload) {
  if (ctl_ < 0) return false;
  if (write_all(ctl_, make_frame(payload))) return true;
  supervisor_gone("cannot write to it: " + std::string(strerror(errno)));
  return false;
}

// Reads the supervisor's list of jobs, then the rest on the loop.
bool PosixJobProcesses::take_events(int fd, std::string& err) {
  std::string first;
  std::vector<SupJob> jobs;
  if (!read_frame(fd, first, kReplyMs, 64 << 20) || !decode_sup_jobs(first, jobs)) {
    ::close(fd);
    err = "it did not say which jobs it runs";
    return false;
  }
  running_.clear();
  for (auto& j : jobs) running_[j.id] = j;
  ev_ = Stream::open_fd(loop_, fd, err);
  if (!ev_) {
    ::close(fd);
    return false;
  }
  ev_->on_frame = [this](std::string_view p) { on_event(p); };
  ev_->on_close = [this](const std::string& why) {
    ev_ = nullptr;
    supervisor_gone(why.empty() ? "it ended" : why);
  };
  if (int rc = ev_->start(); rc != 0) {
    err = "cannot read from it: " + uv_error(rc);
    ev_->discard();
    ev_ = nullptr;
    return false;
  }
  hold_loop();
  return true;
}

void PosixJobProcesses::hold_loop() {
  if (!ev_) return;
  if (sups_.empty())
    uv_unref(ev_->handle());
  else
    uv_ref(ev_->handle());
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
  ctl_ = c;
  sup_pid_ = 0;
  if (take_events(e, err)) return true;
  ::close(ctl_);
  ctl_ = -1;
  return false;
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
  std::vector<std::string> args = {supervisor_, "--jobs-dir", jobs_dir_, "--keep", std::to_string(keep_)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  for (int fd : {0, 1}) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
  // Its stderr is ours: its rare complaints reach the listener's log.
  posix_spawn_file_actions_adddup2(&fa, c[1], 3);
  posix_spawn_file_actions_adddup2(&fa, e[1], 4);
  // It gets its connections and nothing else of the listener's, even a
  // descriptor some library opened without close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&fa, 5);
  // Its own session: a signal to the listener's process group (a terminal's
  // ^C, a shell's kill) does not reach it, and it outlives the listener.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, supervisor_.c_str(), &fa, &at, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  ::close(c[1]);
  ::close(e[1]);
  if (rc != 0) {
    ::close(c[0]);
    ::close(e[0]);
    err = "cannot start " + supervisor_ + ": " + strerror(rc);
    return false;
  }
  reaper_.watch(
      pid, [](int, int) {}, true);
  sup_pid_ = pid;
  ctl_ = c[0];
  if (take_events(e[0], err)) {
    log_debug("job supervisor started (pid " + std::to_string(pid) + ")");
    return true;
  }
  ::close(ctl_);
  ctl_ = -1;
  return false;
}

// The supervisor, connected: the one that runs, or a new one.
bool PosixJobProcesses::supervisor(std::string& err) {
  if (ctl_ >= 0 && ev_) return true;
  std::string why;
  if (connect_supervisor(why)) {
    log_info("re-attached to the job supervisor: " + std::to_string(running_.size()) + " job(s) still run");
    return true;
  }
  if (spawn_supervisor(err)) return true;
  // One that was just ending held its lock; the next one has it now.
  return connect_supervisor(why) || (err += "; " + why, false);
}

void PosixJobProcesses::supervisor_gone(const std::string& why) {
  if (ctl_ >= 0) ::close(ctl_);
  ctl_ = -1;
  if (ev_) ev_->discard();
  ev_ = nullptr;
  running_.clear();
  auto sups = std::move(sups_);
  sups_.clear();
  if (!sups.empty())
    log_error("the job supervisor went away (" + why + "): " + std::to_string(sups.size()) +
              " running job(s) end with what their directories say");
  for (auto& [id, st] : sups) {
    st->owner = nullptr;
    JobEnd e;
    read_job_end(st->dir, e);
    st->deliver(e);
  }
}

void PosixJobProcesses::on_event(std::string_view p) {
  if (p.empty()) return;
  std::string_view id;
  if (p[0] == char(SupMsg::output)) {
    int fd = 0;
    std::string_view bytes;
    if (!decode_sup_output(p, id, fd, bytes)) return;
    auto it = sups_.find(std::string(id));
    if (it != sups_.end()) {
      auto st = it->second;
      st->output(fd, bytes);
    }
  } else if (p[0] == char(SupMsg::end)) {
    JobEnd e;
    if (!decode_sup_end(p, id, e)) return;
    auto it = sups_.find(std::string(id));
    if (it != sups_.end()) {
      auto st = it->second;
      st->deliver(e);
    }
  }
}

std::unique_ptr<JobProcess> PosixJobProcesses::attach(const std::string& id, int pid, uint64_t out, uint64_t err) {
  auto st = std::make_shared<Sup>();
  st->owner = this;
  st->id = id;
  st->dir = job_dir(jobs_dir_, id);
  st->pid = pid;
  st->first[0] = out;
  st->first[1] = err;
  sups_[id] = st;
  hold_loop();
  return std::make_unique<SupervisedJob>(st);
}

std::unique_ptr<JobProcess> PosixJobProcesses::start(const JobSpawn& spec, StartError& err) {
  if (spec.argv.empty()) {
    err = {"empty command", true};
    return nullptr;
  }
  // The cwd is checked here, or a missing one would read as the command's
  // absence (posix_spawn reports the chdir's ENOENT).
  if (!spec.cwd.empty() && access(spec.cwd.c_str(), X_OK) != 0) {
    err = {"cwd " + spec.cwd + ": " + strerror(errno), true};
    return nullptr;
  }
  std::string why;
  if (!supervisor(why)) {
    err = {"no job supervisor: " + why, false};
    return nullptr;
  }
  // The supervisor makes the job's directory, the mark of a started id
  // (job_files.h), and spawns the job; an id whose directory exists is
  // never started again.
  SupStart s{spec.id, spec.cwd, spec.argv, spec.env, spec.record};
  std::string reply;
  if (!control(encode_sup_start(s)) || !read_frame(ctl_, reply, kReplyMs)) {
    // It may have started the job before it went: if so, the directory
    // stays and the id is not run again.
    supervisor_gone("no answer to a start");
    err = {"the job supervisor did not say whether the job started", false};
    return nullptr;
  }
  if (reply.size() == 5 && reply[0] == char(SupMsg::started))
    return attach(spec.id, int(WireReader(std::string_view(reply).substr(1)).u32()), 0, 0);
  std::string_view none;
  JobEnd e;
  if (decode_sup_end(reply, none, e) && !e.error.empty())
    err = {e.error, e.command};
  else
    err = {"the job supervisor's answer to a start is garbled", false};
  return nullptr;
}

void PosixJobProcesses::signal_group(int pid, int sig) {
  for (auto& [id, st] : sups_)
    if (st->pid == pid && !st->ended) {
      control(encode_sup_job(SupMsg::kill, id, sig));
      return;
    }
}

std::vector<std::pair<std::string, std::string>> PosixJobProcesses::started_before() {
  // The supervisor first: it takes what the previous listener asked of it
  // before it lists its jobs, so every job it started has its directory.
  std::string why;
  if (ctl_ < 0 && !connect_supervisor(why)) log_debug("no job supervisor runs: " + why);
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& id : list_job_dirs(jobs_dir_)) {
    std::string text, err;
    read_file(job_dir(jobs_dir_, id) + "/job.json", text, err);
    out.emplace_back(id, text);
  }
  return out;
}

std::unique_ptr<JobProcess> PosixJobProcesses::adopt(const std::string& id, JobEnd& end) {
  std::string dir = job_dir(jobs_dir_, id);
  if (read_job_end(dir, end)) return nullptr;
  // The supervisor writes a job's end.json before it forgets the job: one
  // it does not list has its end on disk, or nobody knows how it ended.
  auto it = running_.find(id);
  if (it != running_.end() && ctl_ >= 0 && !sups_.count(id))
    return attach(id, it->second.pid, it->second.out, it->second.err);
  read_job_end(dir, end);
  return nullptr;
}

KeptOutput PosixJobProcesses::kept_output(const std::string& id, int fd, uint64_t from) {
  return read_kept_output(job_dir(jobs_dir_, id), fd, from);
}

}  // namespace jsd
