#include "audit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config.h"
#include "log.h"
#include "uvx.h"

namespace jsd {

Audit::~Audit() {
  if (fd_ >= 0) ::close(fd_);
}

bool Audit::open(std::string& err) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    err = "cannot open audit log " + path_ + ": " + strerror(errno);
    return false;
  }
  struct stat st;
  size_ = fstat(fd_, &st) == 0 ? size_t(st.st_size) : 0;
  return true;
}

bool Audit::rotate() {
  // Lines written without a flush of their own (an allowed link) go to
  // disk with the file they are in.
  if (fdatasync(fd_) != 0) return false;
  std::string old = path_ + ".1";
  if (rename(path_.c_str(), old.c_str()) != 0) return false;
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ::close(fd_);
  fd_ = fd;
  size_ = 0;
  return true;
}

namespace {
void cut(nlohmann::json& v) {
  if (v.is_string() && v.get_ref<const std::string&>().size() > Audit::kMaxField) {
    size_t n = v.get_ref<const std::string&>().size();
    v = v.get_ref<const std::string&>().substr(0, Audit::kMaxField) + "... (" + std::to_string(n) + " bytes)";
  }
}
}  // namespace

bool Audit::record(nlohmann::json entry, bool sync) {
  if (fd_ < 0) return false;
  // One level deep: entries are flat, but for argv (an array of strings).
  for (auto& v : entry) {
    cut(v);
    if (v.is_array())
      for (auto& e : v) cut(e);
  }
  if (!entry.contains("time")) entry["time"] = iso_time(wall_time());
  std::string line = dump_json(entry) + "\n";
  if (size_ + line.size() > max_ && size_ > 0 && !rotate())
    log_warn("cannot rotate audit log " + path_ + ": " + strerror(errno));
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log_error("cannot write audit log " + path_ + ": " + strerror(errno));
      return false;
    }
    p += n;
    left -= size_t(n);
  }
  size_ += line.size();
  if (sync && fdatasync(fd_) != 0) {
    log_error("cannot sync audit log " + path_ + ": " + strerror(errno));
    return false;
  }
  // Our own entries: "what" and "verdict" come from a few fixed strings.
  ++decisions_[{entry.value("what", "?"), entry.value("verdict", "?")}];
  return true;
}

void AuditRefusals::add(nlohmann::json entry, const std::string& source, const std::string& reason, uint64_t now_ms) {
  ++decisions_[{entry.value("what", "?"), entry.value("verdict", "?")}];
  auto key = std::make_pair(source, reason);
  auto it = open_.find(key);
  if (it != open_.end() && now_ms - it->second.since_ms < interval_ms_) {
    ++it->second.repeated;
    return;
  }
  if (it != open_.end()) {
    write_count(it->second);
    open_.erase(it);
  }
  if (open_.size() >= kMaxSources) flush(UINT64_MAX);
  Open o;
  o.since_ms = now_ms;
  o.since = iso_time(wall_time());
  entry["time"] = o.since;
  file_.record(entry, false);
  o.first = std::move(entry);
  open_.emplace(key, std::move(o));
}

void AuditRefusals::flush(uint64_t now_ms) {
  for (auto it = open_.begin(); it != open_.end();) {
    if (now_ms != UINT64_MAX && now_ms - it->second.since_ms < interval_ms_) {
      ++it;
      continue;
    }
    write_count(it->second);
    it = open_.erase(it);
  }
}

// The same members as the first one of the interval (its address is that
// one's), with how many more came since it.
void AuditRefusals::write_count(Open& o) {
  if (o.repeated == 0) return;
  nlohmann::json line = o.first;
  line.erase("time");
  line["repeated"] = o.repeated;
  line["since"] = o.since;
  file_.record(line, false);
}

}  // namespace jsd
