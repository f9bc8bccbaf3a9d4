#include "replay_guard.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "files.h"

namespace jsd {

bool ReplayGuard::load(std::string& err) {
  if (path_.empty()) return true;
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0 && errno == ENOENT) return true;  // a first start
  std::string text;
  if (!read_file(path_, text, err)) return false;
  std::istringstream in(text);
  std::string line;
  size_t bad = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto sp = line.find(' ');
    char* end = nullptr;
    errno = 0;
    unsigned long long t = sp == std::string::npos ? 0 : std::strtoull(line.c_str() + sp + 1, &end, 10);
    if (sp == 0 || sp == std::string::npos || errno != 0 || !end || *end != '\0' || t == 0) {
      ++bad;
      continue;
    }
    uint64_t& v = latest_[line.substr(0, sp)];
    if (t > v) v = t;
  }
  if (bad) {
    err = path_ + ": " + std::to_string(bad) + " unreadable line(s) skipped";
    return false;
  }
  return true;
}

uint64_t ReplayGuard::latest(const std::string& peer) const {
  auto it = latest_.find(peer);
  return it == latest_.end() ? 0 : it->second;
}

bool ReplayGuard::advance(const std::string& peer, uint64_t t, std::string& err) {
  err.clear();
  uint64_t& v = latest_[peer];
  if (t <= v) return false;
  v = t;
  if (latest_.size() > kMaxPeers) {
    auto oldest = latest_.begin();
    for (auto it = latest_.begin(); it != latest_.end(); ++it)
      if (it->second < oldest->second) oldest = it;
    latest_.erase(oldest);
  }
  if (path_.empty()) return true;
  std::string text;
  for (auto& [name, time] : latest_) text += name + " " + std::to_string(time) + "\n";
  if (!write_file_atomic(path_, text, false, err)) err = "cannot keep handshake times: " + err;
  return true;
}

}  // namespace jsd
