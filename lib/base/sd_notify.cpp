#include "sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "log.h"

namespace jsd {

SdNotify SdNotify::from_env() {
  const char* e = getenv("NOTIFY_SOCKET");
  std::string address = e ? e : "";
  unsetenv("NOTIFY_SOCKET");
  return SdNotify(address);
}

SdNotify::~SdNotify() {
  if (fd_ >= 0) ::close(fd_);
}

bool SdNotify::send(const std::string& state, std::string& err) {
  if (address_.empty()) return true;
  // A path, or "@name": the abstract namespace, where the name starts with
  // a NUL byte and its length is the address length (no terminating NUL).
  if (address_[0] != '/' && address_[0] != '@') {
    err = "NOTIFY_SOCKET '" + address_ + "' is neither a path nor @abstract";
    return false;
  }
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (address_.size() >= sizeof a.sun_path) {
    err = "NOTIFY_SOCKET '" + address_ + "' is too long";
    return false;
  }
  memcpy(a.sun_path, address_.data(), address_.size());
  if (a.sun_path[0] == '@') a.sun_path[0] = '\0';
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + address_.size() + (address_[0] == '/' ? 1 : 0));
  if (fd_ < 0) fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    err = std::string("cannot make a socket for NOTIFY_SOCKET: ") + strerror(errno);
    return false;
  }
  ssize_t n;
  do {
    n = sendto(fd_, state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a), len);
  } while (n < 0 && errno == EINTR);
  if (n != ssize_t(state.size())) {
    err = "cannot notify " + address_ + ": " + (n < 0 ? strerror(errno) : "short write");
    return false;
  }
  return true;
}

void ServiceStatus::tell(const std::string& state, size_t links_up, size_t links) {
  std::string err;
  if (!n_.send(state + "STATUS=" + std::to_string(links_up) + " of " + std::to_string(links) + " links up", err) &&
      !failed_)
    log_warn(err + " (said once)");
  failed_ = failed_ || !err.empty();
}

}  // namespace jsd
