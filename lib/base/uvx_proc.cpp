// Child processes and listening ports (uvx.h).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>

#include "log.h"
#include "uvx.h"

namespace jsd {

Child* Child::spawn(uv_loop_t* loop, const SpawnSpec& spec, std::string& err) {
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
  int rc = uv_spawn(loop, &c->p_, &o);
  // uv_spawn initialises the handle even on failure; it must be closed.
  c->adopt(reinterpret_cast<uv_handle_t*>(&c->p_));
  if (devnull >= 0) ::close(devnull);
  if (rc != 0) {
    err = spec.file + ": " + uv_error(rc);
    c->release();
    return nullptr;
  }
  c->pid_ = c->p_.pid;
  return c;
}

void Child::exit_cb(uv_process_t* p, int64_t status, int sig) {
  auto* c = from<Child>(p->data);
  c->exited_ = true;
  auto fn = std::move(c->on_exit);
  c->release();  // the owner lets go with on_exit; freed in the close callback
  if (fn) fn(status, sig);
}

int Child::kill(int sig) {
  if (exited_) return UV_ESRCH;
  return uv_process_kill(&p_, sig);
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
