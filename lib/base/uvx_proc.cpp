// Child processes and listening ports (uvx.h).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
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
#include "spawner.h"
#include "uvx.h"

namespace jsd {

namespace {

// pidfd_open(2) (Linux 5.3): glibc 2.36 declares it without C linkage for
// C++, so the kernel is asked directly.
int open_pidfd(int pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

// posix_spawn (spawner.h) instead of uv_spawn's fork(): a listener starts
// a jsd-client per remote and a jsd-queue-server per connecting peer, and
// with fork() each start copied its page tables and took copy-on-write
// faults after, with the loop stopped until the exec (B10: most of a mesh's
// CPU time). The child gets the given descriptors as 0..n-1 and no other,
// default signal dispositions, nothing blocked.
Child* Child::spawn(uv_loop_t* loop, const SpawnSpec& spec, std::string& err) {
  const int n = int(spec.fds.size());
  std::vector<int> parent_end(size_t(n), -1), child_end;  // child_end: to close once it runs
  auto undo = [&] {
    for (int fd : child_end) ::close(fd);
    for (int fd : parent_end)
      if (fd >= 0) ::close(fd);
  };
  ProcessSpec ps;
  ps.file = spec.file;
  ps.argv = spec.argv;
  ps.env = spec.env;
  ps.cwd = spec.cwd;
  ps.new_session = spec.detached;
  ps.fds.assign(size_t(n), -1);
  for (int i = 0; i < n; ++i) {
    const ChildFd& f = spec.fds[size_t(i)];
    if (!f.pipe) {
      ps.fds[size_t(i)] = f.fd;
      continue;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      err = spec.file + ": socketpair: " + strerror(errno);
      undo();
      return nullptr;
    }
    parent_end[size_t(i)] = sv[0];
    child_end.push_back(ps.fds[size_t(i)] = sv[1]);
  }
  pid_t pid = -1;
  int rc = spawn_process(ps, pid);
  for (int fd : child_end) ::close(fd);
  child_end.clear();
  if (rc != 0) {
    err = spec.file + ": " + strerror(rc);
    undo();
    return nullptr;
  }
  auto* c = new Child();
  c->pid_ = pid;
  int urc = c->watch_pidfd(loop);
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

// Through a pidfd: one wake-up and one waitpid when it ends.
int Child::watch_pidfd(uv_loop_t* loop) {
  pidfd_ = open_pidfd(pid_);
  if (pidfd_ < 0) return uv_translate_sys_error(errno);
  int urc = uv_poll_init(loop, &poll_, pidfd_);
  if (urc != 0) return urc;
  adopt(reinterpret_cast<uv_handle_t*>(&poll_));
  return uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* ch = from<Child>(h->data);
    int st = 0;
    pid_t got;
    do got = waitpid(ch->pid_, &st, WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == 0) return;  // not yet (a spurious wake-up)
    uv_poll_stop(h);
    if (got < 0) return ch->exited(255, 0);  // not ours, or reaped by someone else: lost
    ch->exited(WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  });
}

Child* Child::watch(uv_loop_t* loop, int pid, std::string& err) {
  auto* c = new Child();
  c->pid_ = pid;
  int urc = c->watch_pidfd(loop);
  if (urc != 0) {
    err = "cannot watch pid " + std::to_string(pid) + ": " + uv_error(urc);
    c->exited_ = true;
    c->release();
    return nullptr;
  }
  return c;
}

void Child::unref() {
  if (is_open()) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
}

Child::~Child() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

void Child::exited(int64_t status, int sig) {
  exited_ = true;
  auto fn = std::move(on_exit);
  release();  // the owner lets go with on_exit; freed in the close callback
  if (fn) fn(status, sig);
}

int Child::kill(int sig) {
  if (exited_) return UV_ESRCH;
  // Not reaped yet (only exited() follows the reaping), so pid_ is still ours.
  return ::kill(pid_, sig) == 0 ? 0 : uv_translate_sys_error(errno);
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
