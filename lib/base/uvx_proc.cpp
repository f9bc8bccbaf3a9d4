// Child processes and listening ports (uvx.h).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>

#include "log.h"
#include "uvx.h"

namespace jsd {

namespace {

// pidfd_open(2) (Linux 5.3): glibc 2.36 declares it without C linkage for
// C++, so the kernel is asked directly.
int open_pidfd(int pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }

bool have_pidfds() {
  static const bool yes = [] {
    int fd = open_pidfd(getpid());
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }();
  return yes;
}

}  // namespace

// posix_spawn instead of uv_spawn's fork(): a listener starts a jsd-client
// per remote and a jsd-queue-server per connecting peer, and with fork()
// each start copied its page tables and took copy-on-write faults after,
// with the loop stopped until the exec (B10: most of a mesh's CPU time).
// The child starts as uv_spawn's would: the given descriptors as 0..n-1,
// default signal dispositions, nothing blocked.
Child* Child::spawn(uv_loop_t* loop, const SpawnSpec& spec, std::string& err) {
  if (!have_pidfds()) return spawn_uv(loop, spec, err);
  const int n = int(spec.fds.size());
  std::vector<int> src(size_t(n), -1), ours;  // ours: to close once it runs
  std::vector<int> parent_end(size_t(n), -1);
  auto undo = [&] {
    for (int fd : ours) ::close(fd);
    for (int fd : parent_end)
      if (fd >= 0) ::close(fd);
  };
  for (int i = 0; i < n; ++i) {
    const ChildFd& f = spec.fds[size_t(i)];
    int fd = f.fd;
    if (f.pipe) {
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        err = spec.file + ": socketpair: " + strerror(errno);
        undo();
        return nullptr;
      }
      parent_end[size_t(i)] = sv[0];
      ours.push_back(fd = sv[1]);
    } else if (fd < 0) {
      fd = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (fd < 0) {
        err = std::string("/dev/null: ") + strerror(errno);
        undo();
        return nullptr;
      }
      ours.push_back(fd);
    }
    // A source among the targets 0..n-1 could be overwritten by an
    // earlier dup2: every source is moved above them first.
    if (fd < n) {
      int high = fcntl(fd, F_DUPFD_CLOEXEC, n);
      if (high < 0) {
        err = spec.file + ": " + strerror(errno);
        undo();
        return nullptr;
      }
      ours.push_back(fd = high);
    }
    src[size_t(i)] = fd;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  for (int i = 0; i < n; ++i) posix_spawn_file_actions_adddup2(&fa, src[size_t(i)], i);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  int flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (spec.detached ? POSIX_SPAWN_SETSID : 0);
  posix_spawnattr_setflags(&at, static_cast<short>(flags));
  std::vector<char*> args, envp;
  for (auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  if (spec.env) {
    for (auto& e : *spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, spec.file.c_str(), &fa, &at, args.data(), spec.env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  for (int fd : ours) ::close(fd);
  ours.clear();
  if (rc != 0) {
    err = spec.file + ": " + strerror(rc);
    undo();
    return nullptr;
  }
  auto* c = new Child();
  c->pid_ = pid;
  c->pidfd_ = open_pidfd(pid);
  int urc = c->pidfd_ < 0 ? uv_translate_sys_error(errno) : uv_poll_init(loop, &c->h_.poll, c->pidfd_);
  if (urc == 0) {
    c->adopt(reinterpret_cast<uv_handle_t*>(&c->h_.poll));
    urc = uv_poll_start(&c->h_.poll, UV_READABLE, [](uv_poll_t* h, int, int) {
      auto* ch = from<Child>(h->data);
      int st = 0;
      pid_t got;
      do got = waitpid(ch->pid_, &st, WNOHANG);
      while (got < 0 && errno == EINTR);
      if (got == 0) return;  // not yet
      uv_poll_stop(h);
      if (got < 0) return ch->exited(255, 0);  // reaped by someone else: lost
      ch->exited(WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    });
  }
  // The pipes' handles take their ends only once the child runs: before,
  // nothing needs undoing in the loop.
  for (int i = 0; urc == 0 && i < n; ++i)
    if (parent_end[size_t(i)] >= 0) {
      urc = uv_pipe_open(spec.fds[size_t(i)].pipe->pipe_handle(), parent_end[size_t(i)]);
      if (urc == 0) parent_end[size_t(i)] = -1;
    }
  if (urc != 0) {
    // It must not run unwatched (nor unread): it goes, and is reaped here.
    ::kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    undo();
    err = spec.file + ": cannot watch the process: " + uv_error(urc);
    c->exited_ = true;
    c->release();
    return nullptr;
  }
  return c;
}

Child::~Child() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

void Child::exit_cb(uv_process_t* p, int64_t status, int sig) { from<Child>(p->data)->exited(status, sig); }

void Child::exited(int64_t status, int sig) {
  exited_ = true;
  auto fn = std::move(on_exit);
  release();  // the owner lets go with on_exit; freed in the close callback
  if (fn) fn(status, sig);
}

int Child::kill(int sig) {
  if (exited_) return UV_ESRCH;
  // Not reaped yet (only exited() follows the reaping), so pid_ is still ours.
  if (pidfd_ >= 0) return ::kill(pid_, sig) == 0 ? 0 : uv_translate_sys_error(errno);
  return uv_process_kill(&h_.p, sig);
}

Child* Child::spawn_uv(uv_loop_t* loop, const SpawnSpec& spec, std::string& err) {
  auto* c = new Child();
  std::vector<char*> args;
  for (auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (spec.env) {
    for (auto& e : *spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  std::vector<uv_stdio_container_t> stdio(spec.fds.size());
  for (size_t i = 0; i < spec.fds.size(); ++i) {
    const ChildFd& f = spec.fds[i];
    if (f.pipe) {
      stdio[i].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE);
      stdio[i].data.stream = f.pipe->stream();
    } else {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = f.fd >= 0 ? f.fd : devnull;
    }
  }
  uv_process_options_t o{};
  o.file = spec.file.c_str();
  o.args = args.data();
  o.env = spec.env ? envp.data() : nullptr;
  o.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  o.stdio_count = int(stdio.size());
  o.stdio = stdio.data();
  o.exit_cb = exit_cb;
  o.flags = spec.detached ? UV_PROCESS_DETACHED : 0;
  int rc = uv_spawn(loop, &c->h_.p, &o);
  // uv_spawn initialises the handle even on failure; it must be closed.
  c->adopt(reinterpret_cast<uv_handle_t*>(&c->h_.p));
  if (devnull >= 0) ::close(devnull);
  if (rc != 0) {
    err = spec.file + ": " + uv_error(rc);
    c->release();
    return nullptr;
  }
  c->pid_ = c->h_.p.pid;
  return c;
}

int bind_free_port(const std::string& host, uint16_t lo, uint16_t hi, uint16_t& port, std::string& err) {
  struct sockaddr_storage ss {};
  socklen_t len;
  bool v6 = host.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  // Start at a random place so concurrent listeners on one host do not race
  // for the same ports; then walk the whole range once.
  static std::mt19937 rng(std::random_device{}());
  uint32_t span = uint32_t(hi) - lo + 1;
  uint32_t start = rng() % span;
  int last_errno = 0;
  for (uint32_t i = 0; i < span; ++i) {
    uint16_t p = static_cast<uint16_t>(lo + (start + i) % span);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = std::string("socket: ") + strerror(errno);
      return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6)
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(p);
    else
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(p);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 && listen(fd, 16) == 0) {
      port = p;
      return fd;
    }
    last_errno = errno;
    ::close(fd);
  }
  err = "no free port in " + host + " " + std::to_string(lo) + "-" + std::to_string(hi) +
        " (last error: " + strerror(last_errno) + ")";
  return -1;
}

bool is_socket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace jsd
