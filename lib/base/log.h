// Logging: one line per event, with a level, to stderr or syslog.
// Secrets are never passed here: callers log names, addresses and reasons.
#pragma once

#include <string>
#include <string_view>

namespace jsd {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

struct LogSettings {
  std::string program = "jsd";  // argv[0]-style tag, e.g. QueueClient_beta
  Level level = Level::info;
  bool syslog = false;
};

void log_init(const LogSettings& s);
bool parse_level(std::string_view s, Level& out);
void log(Level lv, std::string_view msg);
inline void log_debug(std::string_view m) { log(Level::debug, m); }
inline void log_info(std::string_view m) { log(Level::info, m); }
inline void log_warn(std::string_view m) { log(Level::warn, m); }
inline void log_error(std::string_view m) { log(Level::error, m); }
bool log_enabled(Level lv);

// Replaces control characters so a peer cannot forge log lines.
std::string printable(std::string_view s, size_t max = 200);

}  // namespace jsd
