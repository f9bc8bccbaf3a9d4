// The node's control socket and its tools' connections (control_socket.h).
#include "control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control_msg.h"
#include "uvx.h"

namespace jsd {

namespace {
// True if a live process answers on the Unix socket.
bool socket_answers(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

ControlSocket::~ControlSocket() {
  for (auto& [id, s] : tools_) s->discard();
  if (listening_) listening_->discard();
}

bool ControlSocket::claim(std::string& err) {
  std::string sock = cfg_.control_socket();
  if (sock.size() >= sizeof(sockaddr_un::sun_path)) {
    err = "control socket path " + sock + " is too long; choose a shorter state_dir";
    return false;
  }
  if (socket_answers(sock)) {
    err = "another jsd-listener is running for this node (" + sock + " answers)";
    return false;
  }
  unlink(sock.c_str());
  return true;
}

bool ControlSocket::open(std::string& err) {
  std::string sock = cfg_.control_socket();
  listening_ = Stream::pipe(loop_);
  if (!listening_) {
    err = "cannot make the control socket";
    return false;
  }
  mode_t old = umask(077);  // the socket is born 0600
  int rc = uv_pipe_bind(listening_->pipe_handle(), sock.c_str());
  umask(old);
  bound_ = rc == 0;
  if (rc == 0) rc = chmod(sock.c_str(), 0600) == 0 ? 0 : uv_translate_sys_error(errno);
  if (rc == 0) rc = listening_->listen(128, [this](int st) { on_connection(st); });
  if (rc != 0) err = "cannot listen on control socket " + sock + ": " + uv_error(rc);
  return rc == 0;
}

void ControlSocket::on_connection(int status) {
  if (status != 0 || closed_) return;
  Stream* s = Stream::pipe(loop_);
  if (!s) return;
  if (listening_->accept(s) != 0) {
    s->close();
    return;
  }
  uint64_t id = ++next_tool_;
  tools_[id] = s;
  s->on_frame = [this, id](std::string_view p) {
    if (on_msg) on_msg(id, p);
  };
  s->on_close = [this, id](const std::string&) {
    tools_.erase(id);
    if (on_gone) on_gone(id);
  };
  s->start(cfg_.max_frame + kControlSlack);
}

void ControlSocket::close_all() {
  closed_ = true;
  if (listening_) {
    listening_->discard();
    listening_ = nullptr;
  }
  if (bound_) unlink(cfg_.control_socket().c_str());
  bound_ = false;
  for (auto& [id, s] : std::unordered_map<uint64_t, Stream*>(tools_)) s->close();
}

void ControlSocket::send(uint64_t tool, const std::string& msg) {
  if (auto it = tools_.find(tool); it != tools_.end()) it->second->send(msg);
}

void ControlSocket::close(uint64_t tool) {
  if (auto it = tools_.find(tool); it != tools_.end()) it->second->close();
}

size_t ControlSocket::backlog(uint64_t tool) const {
  auto it = tools_.find(tool);
  return it == tools_.end() ? 0 : it->second->pending_bytes();
}

}  // namespace jsd
