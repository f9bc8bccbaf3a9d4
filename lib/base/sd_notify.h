// The service manager's readiness protocol (sd_notify(3)), spoken directly:
// one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). No
// libsystemd: the protocol is this datagram and nothing else.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

namespace jsd {

class SdNotify {
 public:
  // Takes $NOTIFY_SOCKET and removes it from the environment: the link
  // processes and the jobs the listener starts are not the service, and must
  // not speak for it (nor learn where to).
  static SdNotify from_env();
  // address "" (not run by a service manager): send() does nothing.
  explicit SdNotify(std::string address = "") : address_(std::move(address)) {}
  ~SdNotify();
  SdNotify(SdNotify&& o) noexcept : address_(std::move(o.address_)), fd_(o.fd_) { o.fd_ = -1; }
  SdNotify(const SdNotify&) = delete;
  SdNotify& operator=(const SdNotify&) = delete;
  SdNotify& operator=(SdNotify&&) = delete;

  bool enabled() const { return !address_.empty(); }
  // Sends state ("READY=1\nSTATUS=...") as one datagram. Never blocks: a
  // manager that does not read loses a status line, the node goes on.
  // False with err when it could not be sent.
  bool send(const std::string& state, std::string& err);

 private:
  std::string address_;
  int fd_ = -1;
};

// A daemon's word to its service manager: a state ("READY=1\n",
// "STOPPING=1\n", or none) with how many links are up, which `systemctl
// status` shows. A datagram that cannot be sent is logged once, not at
// every change.
class ServiceStatus {
 public:
  explicit ServiceStatus(SdNotify n) : n_(std::move(n)) {}
  bool enabled() const { return n_.enabled(); }
  void tell(const std::string& state, size_t links_up, size_t links);

 private:
  SdNotify n_;
  bool failed_ = false;
};

}  // namespace jsd
