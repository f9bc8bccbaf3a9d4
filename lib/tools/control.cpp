#include "control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "frame.h"
#include "safe_path.h"
#include "uvx.h"

namespace jsd {

namespace {

// Whom a tool believes to be its node's listener: root, the user running
// the tool, and the service user: `user` in the configuration, or else the
// owner of the state directory. The state directory's owner is learnt from
// the tree, so it is not enough for a directory anyone could have made
// (right below /tmp): see safe_path.h.
PathOwners control_owners(const Config& cfg, const std::string& dir) {
  PathOwners o;
  o.firm = {0, getuid(), geteuid()};
  uid_t u = 0;
  struct stat st {};
  if (!cfg.user.empty()) {
    if (user_id(cfg.user, u)) o.firm.push_back(u);
  } else if (lstat(dir.c_str(), &st) == 0) {
    o.learnt.push_back(st.st_uid);
  }
  return o;
}

// The listener's control socket, checked before a byte goes to it: the path
// (nobody but the trusted users could have put a socket there) and, once
// connected, who listens (SO_PEERCRED).
int connect_checked(const Config& cfg, std::string& err) {
  std::string path = cfg.control_socket();
  std::string refusing = "refusing the control socket " + path + ": ";
  std::string dir, why;
  auto none = [&](const std::string& what) {
    err = "no jsd-listener running for node " + cfg.node + " (" + path + ": " + what + ")";
    return -1;
  };
  // The configuration says where the socket is and whom to believe
  // (`user`): like ssh with its config file, only one that root or this
  // user alone can change.
  if (!cfg.path.empty()) {
    PathOwners mine;
    mine.firm = {0, getuid(), geteuid()};
    std::string real;
    if (!check_trusted_path(cfg.path, PathKind::file, mine, real, why)) {
      err = "refusing the configuration file " + cfg.path + ": " + why;
      return -1;
    }
  }
  if (!canonical_path(cfg.state_dir, dir, why)) return none(why);
  struct stat st {};
  if (lstat((dir + "/control.sock").c_str(), &st) != 0) return none(strerror(errno));
  PathOwners owners = control_owners(cfg, dir);
  std::string sock;  // the real path, which is what gets connected to
  if (!check_trusted_path(path, PathKind::socket, owners, sock, why)) {
    err = refusing + why;
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = std::string("socket: ") + strerror(errno);
    return -1;
  }
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (sock.size() >= sizeof a.sun_path) {
    ::close(fd);
    err = "control socket path " + sock + " is too long";
    return -1;
  }
  strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    ::close(fd);
    return none(strerror(e));
  }
  // Who called listen() on it: the path was safe a moment ago, but the
  // process behind it is what gets the request (and its parameters).
  ucred cr{};
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
    int e = errno;
    ::close(fd);
    err = refusing + "cannot tell who serves it: " + strerror(e);
    return -1;
  }
  if (!owners.may_own(cr.uid, false)) {
    ::close(fd);
    err = refusing + "it is served by user " + user_name(cr.uid) + " (pid " + std::to_string(cr.pid) + "), not " +
          owners.names();
    return -1;
  }
  return fd;
}

}  // namespace

int connect_control(const Config& cfg, std::string& err) {
  // A listener that closes on us (stopping, or out of descriptors) is an
  // error to report in one line, not a SIGPIPE that kills the tool silently.
  signal(SIGPIPE, SIG_IGN);
  return connect_checked(cfg, err);
}

Stream* open_control_stream(uv_loop_t* loop, const Config& cfg, std::string& err) {
  int fd = connect_control(cfg, err);
  if (fd < 0) return nullptr;
  Stream* s = Stream::open_fd(loop, fd, err);
  if (!s) {
    ::close(fd);
    err = "cannot use the control socket: " + err;
  }
  return s;
}

ControlNotice read_control_notice(const ControlMsg& m, const std::string& node, std::string& text) {
  if (m.type == ControlType::error) {
    text = m.why;
    return ControlNotice::fatal;
  }
  if (m.type != ControlType::notice) return ControlNotice::none;
  if (m.state == LinkState::refused) {
    text = node + " refused the link: " + m.detail;
    return ControlNotice::fatal;
  }
  // Our own node would not accept the other side (its key or certificate).
  if (m.state == LinkState::rejected) {
    text = "cannot link to " + node + ": " + m.detail;
    return ControlNotice::fatal;
  }
  text = std::string(link_state_name(m.state)) + ": " + m.detail;
  return ControlNotice::note;
}

bool control_request(const Config& cfg, const ControlMsg& req, ControlMsg& reply, int timeout_ms, std::string& err) {
  int fd = connect_control(cfg, err);
  if (fd < 0) return false;
  std::string out = make_frame(encode_control(req));
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = write(fd, out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = std::string("write to control socket: ") + strerror(errno);
      ::close(fd);
      return false;
    }
    off += size_t(n);
  }
  FrameDecoder dec(64 << 20);
  uint64_t deadline = now_ms() + uint64_t(timeout_ms);
  char buf[65536];
  for (;;) {
    std::string_view p;
    auto r = dec.next(p);
    if (r == FrameDecoder::Result::frame) {
      bool ok = decode_control(p, reply, err);
      ::close(fd);
      return ok;
    }
    if (r == FrameDecoder::Result::too_large) break;
    uint64_t now = now_ms();
    if (now >= deadline) {
      err = "the listener did not answer within " + std::to_string(timeout_ms) + " ms";
      ::close(fd);
      return false;
    }
    pollfd pfd{fd, POLLIN, 0};
    int pr = poll(&pfd, 1, int(deadline - now));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    dec.feed(buf, size_t(n));
  }
  err = "the listener closed the control connection";
  ::close(fd);
  return false;
}

}  // namespace jsd
