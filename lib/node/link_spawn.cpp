#include "link_spawn.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "log.h"

namespace jsd {

LinkSpawn::~LinkSpawn() {
  close();
  if (spawner_) spawner_->on_exit = nullptr;  // it exits on its own (its socket is closed)
}

bool LinkSpawn::open(std::string& err) {
  if (!enabled_ || closed_) return false;
  if (sock_ >= 0) return true;
  started_ms_ = now_ms();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    err = std::string("link spawner: socketpair: ") + strerror(errno);
    return false;
  }
  SpawnSpec spec;
  spec.file = bin_dir_ + "/jsd-client";
  // Room for the argv its children show in ps (they write over this one).
  spec.argv = {"LinkSpawner_" + node_, "--spawner", std::string(kSpawnTitleRoom, ' ')};
  spec.fds.push_back(ChildFd{sv[1], nullptr});
  Child* c = Child::spawn(loop_, spec, err);
  ::close(sv[1]);
  if (!c) {
    ::close(sv[0]);
    err = "link spawner: " + err;
    return false;
  }
  spawner_ = c;
  sock_ = sv[0];
  c->unref();  // it alone does not keep the listener's loop running
  c->on_exit = [this, c](int64_t status, int sig) {
    if (spawner_ != c) return;  // given up already (lost())
    spawner_ = nullptr;
    if (!closed_)
      log_warn("link spawner (pid " + std::to_string(c->pid()) + ") " +
               (sig ? "killed by signal " + std::to_string(sig) : "exited (" + std::to_string(status) + ")") +
               ": link processes start by exec until it is back");
    if (sock_ >= 0) ::close(sock_);
    sock_ = -1;
    if (closed_ && on_gone) on_gone();
  };
  log_debug("started the link spawner (pid " + std::to_string(c->pid()) + ")");
  return true;
}

void LinkSpawn::close() {
  closed_ = true;
  if (sock_ >= 0) ::close(sock_);  // it reads the end and exits; its watch sees that (live())
  sock_ = -1;
}

void LinkSpawn::kill() {
  if (spawner_) spawner_->kill(SIGKILL);
}

// A spawner that failed a request is not trusted with the next: it goes
// (SIGKILL), and the next request after restart_ms starts a new one.
void LinkSpawn::lost(const std::string& why) {
  log_warn("link spawner (pid " + std::to_string(spawner_pid()) + ") " + why +
           ": killed; link processes start by exec until it is back");
  if (spawner_) {
    spawner_->kill(SIGKILL);
    spawner_->on_exit = nullptr;  // reaped by its watch, quietly
  }
  spawner_ = nullptr;
  if (sock_ >= 0) ::close(sock_);
  sock_ = -1;
}

Child* LinkSpawn::start(LinkKind kind, const SpawnSpec& spec, std::string& err) {
  if (enabled_ && !closed_ && sock_ < 0 && now_ms() - started_ms_ >= restart_ms_) {
    std::string why;
    if (!open(why)) log_warn(why + " (link processes start by exec)");
  }
  if (sock_ >= 0) {
    if (Child* c = through_spawner(kind, spec, err)) {
      ++forked_;
      return c;
    }
    if (!err.empty()) return nullptr;  // the system said no (descriptors, memory): no exec either
  }
  ++execs_;
  return Child::spawn(loop_, spec, err);
}

// Null with err empty: the spawner failed (it is gone now); try by exec.
Child* LinkSpawn::through_spawner(LinkKind kind, const SpawnSpec& spec, std::string& err) {
  const size_t n = spec.fds.size();
  if (n <= 3 || n - 3 > kSpawnMaxFds) return nullptr;
  // The child's descriptors 3..: a given one, or our socketpair's far end.
  std::vector<int> send_fds, parent_end(n, -1), child_end;
  auto undo = [&] {
    for (int fd : child_end) ::close(fd);
    for (int fd : parent_end)
      if (fd >= 0) ::close(fd);
  };
  for (size_t i = 3; i < n; ++i) {
    const ChildFd& f = spec.fds[i];
    if (!f.pipe) {
      send_fds.push_back(f.fd);
      continue;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      err = spec.file + ": socketpair: " + strerror(errno);
      undo();
      return nullptr;
    }
    parent_end[i] = sv[0];
    child_end.push_back(sv[1]);
    send_fds.push_back(sv[1]);
  }
  SpawnRequest req{kind, spec.argv};
  std::string msg = encode_spawn_request(req);
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kSpawnMaxFds)] = {};
  iovec iov{msg.data(), msg.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = CMSG_SPACE(sizeof(int) * send_fds.size());
  cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * send_fds.size());
  memcpy(CMSG_DATA(cm), send_fds.data(), sizeof(int) * send_fds.size());
  ssize_t w;
  do w = sendmsg(sock_, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (w < 0 && errno == EINTR);
  // The spawner has its own copies now (or never will): ours go.
  for (int fd : child_end) ::close(fd);
  child_end.clear();
  if (w < 0) {
    undo();
    lost(std::string("cannot be asked: ") + strerror(errno));
    return nullptr;
  }
  // Its answer comes as soon as the fork is done: the loop waits for it
  // as it waited for posix_spawn's exec, but no longer than answer_ms_.
  int32_t pid = 0;
  uint64_t until = now_ms() + answer_ms_;
  for (;;) {
    pollfd p{sock_, POLLIN, 0};
    uint64_t now = now_ms();
    int rc = now >= until ? 0 : poll(&p, 1, int(until - now));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      undo();
      lost("did not answer within " + std::to_string(answer_ms_) + " ms");
      return nullptr;
    }
    ssize_t r = recv(sock_, &pid, sizeof pid, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r != sizeof pid) {
      undo();
      lost(r == 0 ? "is gone" : std::string("answered wrongly: ") + (r < 0 ? strerror(errno) : "short answer"));
      return nullptr;
    }
    break;
  }
  if (pid < 0) {  // fork failed: EAGAIN, ENOMEM
    undo();
    err = spec.file + ": " + strerror(-pid);
    return nullptr;
  }
  Child* c = Child::watch(loop_, pid, err);
  if (!c) {
    undo();
    return nullptr;
  }
  for (size_t i = 3; i < n; ++i)
    if (parent_end[i] >= 0) {
      int urc = uv_pipe_open(spec.fds[i].pipe->pipe_handle(), parent_end[i]);
      if (urc != 0) {
        // It must not run unwatched (nor unread): it goes; its watch reaps it.
        c->kill(SIGKILL);
        undo();
        err = spec.file + ": cannot watch the process: " + uv_error(urc);
        return nullptr;
      }
      parent_end[i] = -1;
    }
  return c;
}

}  // namespace jsd
