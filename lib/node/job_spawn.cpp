#include "job_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log.h"
#include "uvx.h"

namespace jsd {

namespace {
// posix_spawnp reports both its own failures and the exec's. These are the
// system's limits (jsd could not start anything just now); any other errno
// is about the command itself (not found, not executable, bad interpreter).
bool system_limit(int e) { return e == EAGAIN || e == ENOMEM || e == EMFILE || e == ENFILE || e == ENOSYS; }
}  // namespace

int spawn_job(const JobSpawn& s, int& out_fd, int& err_fd, StartError& err) {
  if (s.argv.empty()) {
    err = {"empty command", true};
    return -1;
  }
  // The cwd is checked here, or a missing one would read as the command's
  // absence (posix_spawn reports the chdir's ENOENT).
  if (!s.cwd.empty() && access(s.cwd.c_str(), X_OK) != 0) {
    err = {"cwd " + s.cwd + ": " + strerror(errno), true};
    return -1;
  }
  int out[2], er[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    err = {std::string("pipe: ") + strerror(errno), false};
    return -1;
  }
  if (pipe2(er, O_CLOEXEC) != 0) {
    err = {std::string("pipe: ") + strerror(errno), false};
    close(out[0]);
    close(out[1]);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, er[1], 2);
  // A job gets descriptors 0-2 and nothing else, even one some library
  // opened without close-on-exec (close_range in the child).
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  if (!s.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, s.cwd.c_str());
  // A job starts clean: its own session, no blocked signals, default
  // dispositions (the listener ignores SIGPIPE; a job must not inherit that).
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
  // A bare command name is looked up in the listener's PATH.
  int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(out[1]);
  close(er[1]);
  if (rc != 0) {
    close(out[0]);
    close(er[0]);
    err = {s.argv[0] + ": " + strerror(rc), !system_limit(rc)};
    return -1;
  }
  out_fd = out[0];
  err_fd = er[0];
  return pid;
}

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
// A started job's two output pipes and its exit, reported through JobEvents.
// The state is shared with the pipes' and the Reaper's callbacks, which may
// outlive the JobProcess: after it is gone they report nothing.
class PosixJobProcess : public JobProcess {
 public:
  PosixJobProcess(Reaper& reaper, int pid, Stream* out, Stream* err) : reaper_(reaper), pid_(pid) {
    st_->out = out;
    st_->err = err;
  }
  ~PosixJobProcess() override {
    st_->gone = true;  // not cleared: one of its functions may be running right now
    if (st_->out) st_->out->discard();
    if (st_->err) st_->err->discard();
  }
  int pid() const override { return pid_; }
  void run(JobEvents events) override {
    st_->ev = std::move(events);
    wire(1);
    wire(2);
    auto st = st_;
    reaper_.watch(pid_, [st](int code, int sig) {
      if (!st->gone) st->ev.exited(code, sig);
    });
  }
  void pause_output() override {
    if (st_->out) st_->out->pause();
    if (st_->err) st_->err->pause();
  }
  void resume_output() override {
    if (st_->out) st_->out->resume();
    if (st_->err) st_->err->resume();
  }
  void close_output() override {
    // Closing one may end the job and destroy this object: take both first.
    auto st = st_;
    Stream* o = st->out;
    Stream* e = st->err;
    if (o) o->close();
    if (e && st->err) e->close();
  }

 private:
  struct State {
    JobEvents ev;
    Stream* out = nullptr;
    Stream* err = nullptr;
    bool gone = false;
  };
  void wire(int fd) {
    auto st = st_;
    Stream* s = fd == 1 ? st->out : st->err;
    s->on_data = [st, fd](std::string_view d) {
      if (!st->gone) st->ev.output(fd, d);
    };
    s->on_close = [st, fd](const std::string&) {
      (fd == 1 ? st->out : st->err) = nullptr;
      if (!st->gone) st->ev.output_closed(fd);
    };
    if (int rc = s->start(); rc != 0) s->close("cannot read: " + uv_error(rc));
  }
  Reaper& reaper_;
  int pid_;
  std::shared_ptr<State> st_ = std::make_shared<State>();
};
}  // namespace

std::unique_ptr<JobProcess> PosixJobProcesses::start(const JobSpawn& spec, StartError& err) {
  // The pipes' handles first: once the process runs, nothing may fail.
  Stream* out = Stream::pipe(loop_);
  Stream* errs = Stream::pipe(loop_);
  int out_fd = -1, err_fd = -1;
  int pid = -1;
  if (!out || !errs)
    err = {"cannot set up its output pipes", false};
  else
    pid = spawn_job(spec, out_fd, err_fd, err);
  int rc = 0;
  if (pid > 0 && (rc = uv_pipe_open(out->pipe_handle(), out_fd)) != 0) {
    ::close(out_fd);
    ::close(err_fd);
  } else if (pid > 0 && (rc = uv_pipe_open(errs->pipe_handle(), err_fd)) != 0) {
    ::close(err_fd);
  }
  if (pid > 0 && rc == 0) return std::make_unique<PosixJobProcess>(reaper_, pid, out, errs);
  if (out) out->discard();
  if (errs) errs->discard();
  if (pid > 0) {
    // Its output could not be read: it must not run unseen.
    ::kill(-pid, SIGKILL);
    reaper_.watch(pid, [](int, int) {});
    err = {"cannot read its output: " + uv_error(rc), false};
  }
  return nullptr;
}

void PosixJobProcesses::signal_group(int pid, int sig) { ::kill(-pid, sig); }

}  // namespace jsd
