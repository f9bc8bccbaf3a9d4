#include "control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "frame.h"
#include "uvx.h"

namespace jsd {

int connect_control(const Config& cfg, std::string& err) {
  // A listener that closes on us (stopping, or out of descriptors) is an
  // error to report in one line, not a SIGPIPE that kills the tool silently.
  signal(SIGPIPE, SIG_IGN);
  std::string path = cfg.control_socket();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = std::string("socket: ") + strerror(errno);
    return -1;
  }
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) {
    ::close(fd);
    err = "control socket path " + path + " is too long";
    return -1;
  }
  strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    ::close(fd);
    err = "no jsd-listener running for node " + cfg.node + " (" + path + ": " + strerror(e) + ")";
    return -1;
  }
  return fd;
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
