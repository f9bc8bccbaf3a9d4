#include "log.h"

#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace jsd {
namespace {
LogSettings g;
}

void log_init(const LogSettings& s) {
  g = s;
  if (g.syslog) openlog(g.program.c_str(), LOG_PID, LOG_DAEMON);
}

bool parse_level(std::string_view s, Level& out) {
  if (s == "debug")
    out = Level::debug;
  else if (s == "info")
    out = Level::info;
  else if (s == "warn" || s == "warning")
    out = Level::warn;
  else if (s == "error")
    out = Level::error;
  else
    return false;
  return true;
}

bool log_enabled(Level lv) { return lv >= g.level; }

void log(Level lv, std::string_view msg) {
  if (lv < g.level) return;
  static const char* names[] = {"debug", "info", "warn", "error"};
  if (g.syslog) {
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    syslog(prio[int(lv)], "%s: %.*s", names[int(lv)], int(msg.size()), msg.data());
    return;
  }
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf per line so lines from several processes sharing stderr do
  // not interleave mid-line.
  fprintf(stderr, "%s.%03dZ %s[%d] %s: %.*s\n", ts, int(tv.tv_usec / 1000), g.program.c_str(), int(getpid()),
          names[int(lv)], int(msg.size()), msg.data());
}

std::string printable(std::string_view s, size_t max) {
  std::string o;
  for (char c : s) {
    if (o.size() >= max) {  // cut, with the length it had
      o += "... (" + std::to_string(s.size()) + " bytes)";
      break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char b[8];
      snprintf(b, sizeof b, "\\x%02x", u);
      o += b;
    } else {
      o += c;
    }
  }
  return o;
}

}  // namespace jsd
