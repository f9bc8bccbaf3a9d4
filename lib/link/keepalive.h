// Who finds a dead idle link (issue 20, B13): the kernel, with TCP
// keepalive on both ends of every link socket, instead of a probe that
// wakes the client, its listener, the queue-server and the peer's listener
// every idle_heartbeat_ms. A hub with 1,000 idle peers spent ~3 wake-ups
// per pair and idle period on those probes (~200 per second in all); the
// kernel's probes wake no process. OpenSSH (TCPKeepAlive) does the same.
//
// The kernel counts keepalive times in whole seconds, so this holds only
// where idle_heartbeat_ms and dead_after_ms are 1000 or more (the defaults
// are 15000 and 3000); below that, jsd probes idle links itself as before.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "config.h"
#include "uvx.h"

namespace jsd {

// True: the kernel watches idle links (no application probe on them).
inline bool kernel_keepalive(const Config& c) { return c.idle_heartbeat_ms >= 1000 && c.dead_after_ms >= 1000; }

struct KeepaliveTimes {
  int idle_s;             // TCP_KEEPIDLE: the first probe after this much silence
  int intvl_s;            // TCP_KEEPINTVL: then one every intvl_s
  int count;              // TCP_KEEPCNT: probes unanswered before the end (without user_timeout_ms)
  unsigned user_timeout;  // TCP_USER_TIMEOUT (ms): silence that ends the link once a probe is out
};

// A dead idle link ends within idle_heartbeat_ms + dead_after_ms of its
// last frame, as jsd.conf(5) promises: the first probe goes at
// idle_heartbeat_ms (rounded down to seconds: early, never late), then one
// per intvl_s, and the kernel ends the link at the first probe instant at
// which nothing has been heard for user_timeout (and at least one probe is
// out; Linux's tcp_keepalive_timer). That instant is < user_timeout +
// intvl_s, hence user_timeout = idle + dead - intvl. The same user timeout
// ends a link whose data (an ack, a heartbeat) stays unacknowledged that
// long: the kernel sends no keepalive probe while data is in flight.
inline KeepaliveTimes keepalive_times(const Config& c) {
  KeepaliveTimes k;
  k.idle_s = std::max(1, c.idle_heartbeat_ms / 1000);
  // A few probes per dead_after_ms: one lost probe does not end a link.
  k.intvl_s = std::max(1, c.dead_after_ms / 3000);
  k.count = std::max(1, c.dead_after_ms / (k.intvl_s * 1000));
  k.user_timeout = unsigned(c.idle_heartbeat_ms + c.dead_after_ms - k.intvl_s * 1000);
  return k;
}

// Sets keepalive on a connected link socket; returns "" or what failed.
inline std::string set_link_keepalive(int fd, const Config& c) {
  const KeepaliveTimes k = keepalive_times(c);
  const int on = 1;
  struct Opt {
    int level, name;
    const void* v;
    socklen_t len;
    const char* what;
  };
  const Opt opts[] = {
      {SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on, "SO_KEEPALIVE"},
      {IPPROTO_TCP, TCP_KEEPIDLE, &k.idle_s, sizeof k.idle_s, "TCP_KEEPIDLE"},
      {IPPROTO_TCP, TCP_KEEPINTVL, &k.intvl_s, sizeof k.intvl_s, "TCP_KEEPINTVL"},
      {IPPROTO_TCP, TCP_KEEPCNT, &k.count, sizeof k.count, "TCP_KEEPCNT"},
      {IPPROTO_TCP, TCP_USER_TIMEOUT, &k.user_timeout, sizeof k.user_timeout, "TCP_USER_TIMEOUT"},
  };
  for (const Opt& o : opts)
    if (setsockopt(fd, o.level, o.name, o.v, o.len) != 0) return std::string(o.what) + ": " + std::strerror(errno);
  return "";
}

// set_link_keepalive on a link's stream where the kernel watches idle
// links (kernel_keepalive); "" or what failed. Not fatal to the link: its
// busy heartbeats still find it dead once it is used.
inline std::string stream_keepalive(Stream* c, const Config& cfg) {
  if (!kernel_keepalive(cfg)) return "";
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(c->tcp_handle()), &fd) != 0) return "no descriptor";
  return set_link_keepalive(fd, cfg);
}

}  // namespace jsd
