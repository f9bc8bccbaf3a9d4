// For the spawners' tests (spawner_test.cpp, uvx_test.cpp): our descriptors
// 1 and 2 crossed over onto two pipes while a child is started, so that its
// stdout must come from our 2 and its stderr from our 1. Sources among the
// targets: a naive dup2 in order would give the child one descriptor twice.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace jsd_test {

class CrossedStdio {
 public:
  // From here on our 2 writes to the pipe out() reads, our 1 to err()'s.
  CrossedStdio() {
    ok = pipe2(out_, O_CLOEXEC) == 0 && pipe2(err_, O_CLOEXEC) == 0;
    saved1_ = dup(1);
    saved2_ = dup(2);
    ok = ok && saved1_ >= 0 && saved2_ >= 0 && dup2(err_[1], 1) == 1 && dup2(out_[1], 2) == 2;
  }
  ~CrossedStdio() {
    restore();
    for (int fd : {out_[0], err_[0]})
      if (fd >= 0) close(fd);
  }
  CrossedStdio(const CrossedStdio&) = delete;
  CrossedStdio& operator=(const CrossedStdio&) = delete;

  // Our 1 and 2 back, and our write ends closed (the child has its own).
  void restore() {
    if (saved1_ < 0) return;
    dup2(saved1_, 1);
    dup2(saved2_, 2);
    close(saved1_);
    close(saved2_);
    close(out_[1]);
    close(err_[1]);
    saved1_ = saved2_ = -1;
  }
  // All the child wrote on its stdout (our 2) or stderr (our 1), once it
  // has ended and restore() was called.
  std::string out() { return read_all(out_[0]); }
  std::string err() { return read_all(err_[0]); }

  bool ok = false;

 private:
  static std::string read_all(int fd) {
    std::string r;
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) r.append(buf, size_t(n));
    return r;
  }
  int out_[2] = {-1, -1}, err_[2] = {-1, -1};
  int saved1_ = -1, saved2_ = -1;
};

}  // namespace jsd_test
