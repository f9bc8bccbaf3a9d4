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

bool Audit::record(nlohmann::json entry, bool sync) {
  if (fd_ < 0) return false;
  entry["time"] = iso_time(wall_time());
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

}  // namespace jsd
