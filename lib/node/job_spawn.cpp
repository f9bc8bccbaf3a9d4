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

void Reaper::watch(int pid, std::function<void(int, int)> on_exit) {
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

// Reads one frame from a blocking socket (the supervisor's first message:
// it comes within a process start). False on EOF, a timeout or garbage.
bool read_first_frame(int fd, std::string& payload, int timeout_ms) {
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
      if (len == 0 || len > (1u << 16)) return false;
      need += len;
    }
  }
  payload = buf.substr(kFrameHeader);
  return true;
}

}  // namespace

// One supervisor's stream and what its job reports through it; shared with
// the stream's callbacks, which may outlive the JobProcess.
struct PosixJobProcesses::Sup {
  Stream* s = nullptr;
  JobEvents ev;
  std::string dir;
  int pid = 0;
  uint64_t first[2] = {0, 0};
  bool gone = false, ended = false, out_open = true, err_open = true;

  void close_streams() {
    for (int fd : {1, 2}) {
      bool& open = fd == 1 ? out_open : err_open;
      if (!open || gone) continue;
      open = false;
      auto f = ev.output_closed;
      f(fd);
    }
  }
  // The end, once: from the E message, end.json, or nothing (lost).
  void deliver(const JobEnd& e) {
    if (ended || gone) return;
    ended = true;
    if (ev.end && e.known) ev.end(e);
    if (gone) return;
    close_streams();
    if (gone) return;
    auto f = ev.exited;
    if (!e.known || !e.error.empty())
      f(-1, 0);
    else
      f(e.signal ? 0 : e.exit_code, e.signal);
  }
  void on_frame(std::string_view p) {
    if (p.empty() || gone) return;
    if (p[0] == char(SupMsg::output) && p.size() >= 2) {
      int fd = p[1] == 2 ? 2 : 1;
      auto f = ev.output;
      f(fd, p.substr(2));
    } else if (p[0] == char(SupMsg::end)) {
      JobEnd e;
      if (!parse_job_end_text(p.substr(1), e)) read_job_end(dir, e);
      deliver(e);
    }
  }
};

namespace {
class SupervisedJob : public JobProcess {
 public:
  explicit SupervisedJob(std::shared_ptr<PosixJobProcesses::Sup> st) : st_(std::move(st)) {}
  ~SupervisedJob() override {
    st_->gone = true;  // not cleared: one of its functions may be running right now
    if (st_->s) st_->s->discard();
    st_->s = nullptr;
  }
  int pid() const override { return st_->pid; }
  void run(JobEvents events) override {
    st_->ev = std::move(events);
    auto st = st_;
    st->s->on_frame = [st](std::string_view p) { st->on_frame(p); };
    st->s->on_close = [st](const std::string&) {
      st->s = nullptr;
      if (st->ended || st->gone) return;
      // The supervisor went without a word: end.json says how the job
      // ended, unless it died (SIGKILL) before it knew.
      JobEnd e;
      read_job_end(st->dir, e);
      st->deliver(e);
    };
    if (int rc = st->s->start(); rc != 0) st->s->close("cannot read: " + uv_error(rc));
  }
  void pause_output() override {
    if (st_->s) st_->s->pause();
  }
  void resume_output() override {
    if (st_->s) st_->s->resume();
  }
  // The supervisor drains the pipes itself; only the reports are left.
  void close_output() override {
    auto st = st_;
    st->close_streams();
  }
  uint64_t first_offset(int fd) const override { return st_->first[fd == 2 ? 1 : 0]; }

 private:
  std::shared_ptr<PosixJobProcesses::Sup> st_;
};
}  // namespace

std::unique_ptr<JobProcess> PosixJobProcesses::attach(int fd, int pid, const std::string& dir, uint64_t out,
                                                      uint64_t err) {
  std::string why;
  Stream* s = Stream::open_fd(loop_, fd, why);
  if (!s) {
    ::close(fd);
    return nullptr;
  }
  auto st = std::make_shared<Sup>();
  st->s = s;
  st->dir = dir;
  st->pid = pid;
  st->first[0] = out;
  st->first[1] = err;
  for (auto it = sups_.begin(); it != sups_.end();) it = it->second.expired() ? sups_.erase(it) : std::next(it);
  sups_[pid] = st;
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
  // The directory is the mark of a started id: it is created before the
  // job can run, and an id whose directory exists is never started again.
  std::string dir = job_dir(jobs_dir_, spec.id);
  if (mkdir(dir.c_str(), 0700) != 0) {
    err = {errno == EEXIST ? "job " + spec.id + " was started here before"
                           : "cannot create " + dir + ": " + strerror(errno),
           false};
    return nullptr;
  }
  int rfd = open((dir + "/job.json").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  bool written = rfd >= 0 && write(rfd, spec.record.data(), spec.record.size()) == ssize_t(spec.record.size());
  if (rfd >= 0 && ::close(rfd) != 0) written = false;
  int sv[2] = {-1, -1};
  if (!written || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    err = {"cannot set up " + dir + ": " + strerror(errno), false};
    remove_job_dir(dir);
    return nullptr;
  }
  std::vector<std::string> args = {supervisor_, "--dir", dir, "--keep", std::to_string(keep_)};
  if (!spec.cwd.empty()) args.insert(args.end(), {"--cwd", spec.cwd});
  args.push_back("--");
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  for (int fd : {0, 1, 2}) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
  // The supervisor gets its stream and nothing else of the listener's, even
  // a descriptor some library opened without close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  // Its own session: a signal to the listener's process group (a terminal's
  // ^C, a shell's kill) does not reach it, and it outlives the listener.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t sup = -1;
  int rc = posix_spawn(&sup, supervisor_.c_str(), &fa, &at, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  ::close(sv[1]);
  if (rc != 0) {
    ::close(sv[0]);
    remove_job_dir(dir);
    err = {"cannot start its supervisor " + supervisor_ + ": " + strerror(rc), false};
    return nullptr;
  }
  reaper_.watch(sup, [](int, int) {});
  std::string first;
  bool got = read_first_frame(sv[0], first, 10000);
  if (got && first.size() == 5 && first[0] == char(SupMsg::started)) {
    int pid = int(WireReader(std::string_view(first).substr(1)).u32());
    return attach(sv[0], pid, dir, 0, 0);
  }
  ::close(sv[0]);
  JobEnd e;
  if (got && !first.empty() && first[0] == char(SupMsg::end) &&
      parse_job_end_text(std::string_view(first).substr(1), e) && !e.error.empty()) {
    err = {e.error, e.command};
  } else {
    // It may have started the job before it died: the directory stays, so
    // the id is not run again.
    err = {"its supervisor " + supervisor_ + " ended before it said whether the job started", false};
  }
  return nullptr;
}

void PosixJobProcesses::signal_group(int pid, int sig) {
  auto it = sups_.find(pid);
  auto st = it == sups_.end() ? nullptr : it->second.lock();
  if (!st || !st->s || st->ended) return;  // it has ended: nothing to signal
  std::string m = {char(SupMsg::kill), char(sig)};
  st->s->send(m);
}

std::vector<std::pair<std::string, std::string>> PosixJobProcesses::started_before() {
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
  int dfd = -1;
  std::string path = unix_socket_path(dir + "/sock", dfd);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  bool ok = fd >= 0 && !path.empty();
  if (ok) {
    memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  if (dfd >= 0) ::close(dfd);
  std::string hello;
  // The hello comes at once from a supervisor that runs; one that is busy
  // finishing never accepts, and its end.json is there once it closes.
  if (ok && read_first_frame(fd, hello, 5000) && hello.size() == 21 && hello[0] == char(SupMsg::hello)) {
    WireReader r(std::string_view(hello).substr(1));
    int pid = int(r.u32());
    uint64_t out = r.u64(), err = r.u64();
    return attach(fd, pid, dir, out, err);
  }
  if (fd >= 0) ::close(fd);
  read_job_end(dir, end);
  return nullptr;
}

KeptOutput PosixJobProcesses::kept_output(const std::string& id, int fd, uint64_t from) {
  return read_kept_output(job_dir(jobs_dir_, id), fd, from);
}

}  // namespace jsd
