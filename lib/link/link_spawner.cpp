#include "link_spawner.h"

#include <fcntl.h>
#include <sched.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "link_main.h"

namespace jsd {

std::string encode_spawn_request(const SpawnRequest& r) {
  std::string s(1, static_cast<char>(r.kind));
  for (auto& a : r.argv) {
    s += a;
    s.push_back('\0');
  }
  return s;
}

bool decode_spawn_request(const char* p, size_t n, SpawnRequest& r, std::string& err) {
  if (n < 3 || (p[0] != 'c' && p[0] != 's') || p[n - 1] != '\0') {
    err = "malformed spawn request";
    return false;
  }
  r.kind = static_cast<LinkKind>(p[0]);
  r.argv.clear();
  for (size_t at = 1; at < n;) {
    size_t len = strnlen(p + at, n - at);
    r.argv.emplace_back(p + at, len);
    at += len + 1;
  }
  return true;
}

int place_descriptors(const std::vector<int>& fds, int first) {
  const int end = first + int(fds.size());
  // A source among the targets could be overwritten by an earlier dup2:
  // each goes above them first (as spawner.cpp does for posix_spawn).
  std::vector<int> high(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, end);
    if (high[i] < 0) return errno;
  }
  for (size_t i = 0; i < fds.size(); ++i)
    if (dup2(high[i], first + int(i)) < 0) return errno;  // dup2: not close-on-exec
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return errno;
  if (null != 0 && dup2(null, 0) < 0) return errno;
  if (syscall(SYS_close_range, unsigned(end), ~0U, 0) != 0) {
    for (int fd = end; fd < 65536; ++fd) ::close(fd);  // a kernel before 5.9
  }
  if (first > 3)
    for (int fd = 3; fd < first; ++fd) ::close(fd);
  return 0;
}

namespace {

// The spawner's argv area: the listener starts it with kSpawnTitleRoom
// bytes of argv, which each child overwrites with its own (ps and
// /proc/PID/cmdline read it there; trailing NULs are not shown).
char* g_title = nullptr;
size_t g_title_len = 0;

void set_title(const std::vector<std::string>& argv) {
  if (!g_title) return;
  memset(g_title, 0, g_title_len);
  size_t at = 0;
  for (auto& a : argv) {
    if (at + 1 >= g_title_len) break;
    size_t n = std::min(a.size(), g_title_len - 1 - at);
    memcpy(g_title + at, a.data(), n);
    at += n + 1;  // the NUL between arguments (memset left it)
  }
}

// The child: never returns.
[[noreturn]] void become(const SpawnRequest& r, const std::vector<int>& fds) {
  int e = place_descriptors(fds);
  if (e != 0) {
    fprintf(stderr, "jsd-client: link spawner: cannot place descriptors: %s\n", strerror(e));
    _exit(70);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  set_title(r.argv);
  // The name an exec would have given (ps -o comm, pidof).
  prctl(PR_SET_NAME, r.kind == LinkKind::client ? "jsd-client" : "jsd-queue-serve");
  std::vector<char*> args;
  for (auto& a : r.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = r.kind == LinkKind::client ? queue_client_main(int(r.argv.size()), args.data())
                                      : queue_server_main(int(r.argv.size()), args.data());
  fflush(nullptr);
  exit(rc);
}

// fork(), but the child is our parent's (the listener's): it reaps it and
// gets its exit status, and nothing is left to us. The raw system call, as
// fork() does it (a copy of this stack); the spawner has one thread.
pid_t fork_for_parent() {
  return pid_t(syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

void answer(int sock, int32_t v) {
  while (send(sock, &v, sizeof v, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

}  // namespace

int run_link_spawner(int argc, char** argv) {
  if (argc >= 1) {
    g_title = argv[0];
    g_title_len = size_t(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
    set_title({argv[0]});
  }
  const int sock = 3;
  // Once, here: every child starts with it done.
  if (sodium_init() < 0) {
    fprintf(stderr, "jsd-client: link spawner: libsodium cannot start\n");
    return 70;
  }
  // For tests only (link_spawn_test.cpp): the spawner dies (kill) or
  // stops (stop) just after a fork, before its answer, as a spawner killed
  // at the worst instant would.
  const char* hook = getenv("JSD_TEST_SPAWNER_AFTER_FORK");
  const int after_fork = !hook ? 0 : !strcmp(hook, "kill") ? SIGKILL : !strcmp(hook, "stop") ? SIGSTOP : 0;
  unsetenv("JSD_TEST_SPAWNER_AFTER_FORK");  // not the link processes'
  static char buf[64 * 1024];
  for (;;) {
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kSpawnMaxFds)];
    iovec iov{buf, sizeof buf};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? 0 : 70;  // the listener is gone (or never was)
    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; ++i) {
          int fd;
          memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          fds.push_back(fd);
        }
      }
    SpawnRequest r;
    std::string err;
    int32_t result;
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || !decode_spawn_request(buf, size_t(n), r, err)) {
      result = -EINVAL;
    } else {
      pid_t pid = fork_for_parent();
      if (pid == 0) become(r, fds);
      if (pid > 0 && after_fork) raise(after_fork);
      result = pid > 0 ? int32_t(pid) : -errno;
    }
    for (int fd : fds) ::close(fd);
    answer(sock, result);
  }
}

}  // namespace jsd
