#include "files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace jsd {

bool make_dir(const std::string& dir, std::string& err) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string cur = dir.substr(0, i);
      if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
        err = "cannot create " + cur + ": " + strerror(errno);
        return false;
      }
    }
  }
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& data, bool sync, std::string& err,
                       const std::string& tmp_suffix, unsigned mode) {
  std::string tmp = path + tmp_suffix;
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || (mode != 0600 && fchmod(fd, mode_t(mode)) != 0)) {
    err = "cannot write " + tmp + ": " + strerror(errno);
    if (fd >= 0) close(fd), unlink(tmp.c_str());
    return false;
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = "cannot write " + tmp + ": " + strerror(errno);
      close(fd);
      unlink(tmp.c_str());
      return false;
    }
    off += size_t(n);
  }
  if ((sync && fsync(fd) != 0) || close(fd) != 0) {
    err = "cannot write " + tmp + ": " + strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    err = "cannot rename " + tmp + ": " + strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  if (sync) {
    // The rename itself must survive a crash too.
    std::string dir = path.substr(0, path.rfind('/'));
    int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  return true;
}

bool read_file(const std::string& path, std::string& out, std::string& err) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = "cannot read " + path + ": " + strerror(errno);
    return false;
  }
  out.clear();
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = "cannot read " + path + ": " + strerror(errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  close(fd);
  return true;
}

bool cloexec_from(int lowfd) {
#if defined(SYS_close_range)
  // Linux 5.11 and later: one call, no descriptor to open for it.
  constexpr unsigned kCloexec = 1u << 2;  // CLOSE_RANGE_CLOEXEC (linux/close_range.h)
  if (syscall(SYS_close_range, unsigned(lowfd), ~0u, kCloexec) == 0) return true;
#endif
  DIR* d = opendir("/proc/self/fd");
  if (!d) return false;
  int own = dirfd(d);
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || end == e->d_name || fd < lowfd || fd == own) continue;
    int fl = fcntl(int(fd), F_GETFD);
    if (fl >= 0) fcntl(int(fd), F_SETFD, fl | FD_CLOEXEC);
  }
  closedir(d);
  return true;
}

}  // namespace jsd
