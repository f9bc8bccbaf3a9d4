#include "link_spawn.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "log.h"

namespace jsd {

namespace {

// What /proc/PID/stat says of a process that the sweep needs.
struct ProcStat {
  std::string comm;
  int ppid = 0, pgrp = 0;
  uint64_t start = 0;  // clock ticks after boot
};

bool proc_stat(int pid, ProcStat& ps) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // comm is in parentheses and may hold anything: the fields follow its last ')'.
  char* open_p = strchr(buf, '(');
  char* close_p = strrchr(buf, ')');
  if (!open_p || !close_p || close_p < open_p) return false;
  ps.comm.assign(open_p + 1, close_p);
  // Fields 3 (state) to 22 (starttime), space-separated.
  char* f = close_p + 1;
  for (int field = 3; field <= 22; ++field) {
    while (*f == ' ') ++f;
    if (!*f) return false;
    char* end = f;
    while (*end && *end != ' ') ++end;
    if (field == 4) ps.ppid = atoi(f);
    if (field == 5) ps.pgrp = atoi(f);
    if (field == 22) ps.start = strtoull(f, nullptr, 10);
    f = end;
  }
  return true;
}

uint64_t start_ticks(int pid) {
  ProcStat ps;
  return proc_stat(pid, ps) ? ps.start : 0;
}

}  // namespace

LinkSpawn::~LinkSpawn() {
  *self_ = nullptr;  // the sweep's callbacks find nobody
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
  known(c->pid());
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
//
// It may have forked the link process before it failed (CLONE_PARENT: the
// child is ours) and not named it: nobody would watch or reap that child,
// and it might hold the link's descriptors. Once the spawner has exited
// (its fork, if any, is done then), sweep() kills and reaps it.
void LinkSpawn::lost(const std::string& why) {
  log_warn("link spawner (pid " + std::to_string(spawner_pid()) + ") " + why +
           ": killed; link processes start by exec until it is back");
  if (spawner_) {
    spawner_->kill(SIGKILL);
    std::weak_ptr<LinkSpawn*> w = self_;
    auto k = known_.find(spawner_->pid());
    uint64_t born = k != known_.end() ? k->second : 0;
    spawner_->on_exit = [w, born](int64_t, int) {  // reaped by its watch, quietly
      auto s = w.lock();
      if (s && *s) (*s)->sweep(born);
    };
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
      known(c->pid());
      return c;
    }
    if (!err.empty()) return nullptr;  // the system said no (descriptors, memory): no exec either
  }
  ++execs_;
  Child* c = Child::spawn(loop_, spec, err);
  if (c) known(c->pid());
  return c;
}

void LinkSpawn::known(int pid) {
  known_[pid] = start_ticks(pid);
  // Those that are gone (reaped: no /proc entry, or a new process with
  // their pid) go, when the map has doubled since it was last pruned.
  if (known_.size() < 2 * pruned_at_ + 64) return;
  for (auto it = known_.begin(); it != known_.end();) {
    uint64_t now = start_ticks(it->first);
    it = now == 0 || now != it->second ? known_.erase(it) : std::next(it);
  }
  pruned_at_ = known_.size();
}

// Our children that a spawner forked: in our process group (jobs and the
// job supervisor have their own sessions), named as a link process (the
// spawner's own name, or the one the child gave itself), started no
// earlier than that spawner (born: its start time), and not one this
// started and knows (a link process, a spawner). Zombies included: one that
// already ended is reaped.
void LinkSpawn::sweep(uint64_t born) {
  const int me = getpid(), group = getpgrp();
  std::vector<int> orphans;
  if (DIR* d = opendir("/proc")) {
    while (dirent* de = readdir(d)) {
      char* end = nullptr;
      long pid = strtol(de->d_name, &end, 10);
      if (pid <= 0 || *end) continue;
      ProcStat ps;
      if (!proc_stat(int(pid), ps) || ps.ppid != me || ps.pgrp != group || ps.start < born) continue;
      if (ps.comm != "jsd-client" && ps.comm != "jsd-queue-serve") continue;
      auto k = known_.find(int(pid));
      if ((k != known_.end() && k->second == ps.start) || sweeping_.count(int(pid))) continue;
      orphans.push_back(int(pid));
    }
    closedir(d);
  }
  for (int pid : orphans) {
    log_warn("link process pid " + std::to_string(pid) +
             ": forked by a link spawner that never named it; killed (its link starts again by exec)");
    ::kill(pid, SIGKILL);
    std::string err;
    Child* c = Child::watch(loop_, pid, err);
    if (!c) {
      log_warn(err);
      continue;
    }
    sweeping_.insert(pid);
    std::weak_ptr<LinkSpawn*> w = self_;
    c->on_exit = [w, pid](int64_t, int) {
      auto s = w.lock();
      if (!s || !*s) return;
      (*s)->sweeping_.erase(pid);
      ++(*s)->swept_;
    };
  }
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
    // Our child, that nobody could watch: it must not run on unwatched
    // (nor end a zombie). It goes, and is reaped here, as Child::spawn does.
    ::kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
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
