// Baselines for jsd's link: a plain loopback TCP ping-pong (round trip of
// SIZE-byte messages) and a stream of length-prefixed frames (frames/s).
// Usage: raw_tcp pingpong SIZE COUNT | raw_tcp stream FRAME_BYTES COUNT
// Prints one JSON object.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void full_write(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) die("write");
    p += w;
    n -= size_t(w);
  }
}

static bool full_read(int fd, char* p, size_t n) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: raw_tcp pingpong SIZE COUNT | stream FRAME_BYTES COUNT\n");
    return 2;
  }
  std::string mode = argv[1];
  size_t size = strtoul(argv[2], nullptr, 10);
  long count = strtol(argv[3], nullptr, 10);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) || listen(ls, 1)) die("bind");
  socklen_t len = sizeof a;
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  pid_t pid = fork();
  if (pid == 0) {
    int c = accept(ls, nullptr, nullptr);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::vector<char> buf(std::max<size_t>(size, 1 << 16));
    if (mode == "pingpong") {
      while (full_read(c, buf.data(), size)) full_write(c, buf.data(), size);
    } else {
      // Parse frames the way a receiver must: header, then body.
      std::string acc;
      long frames = 0;
      ssize_t r;
      while ((r = read(c, buf.data(), buf.size())) > 0) {
        acc.append(buf.data(), size_t(r));
        size_t pos = 0;
        while (acc.size() - pos >= 4) {
          uint32_t n = (uint8_t(acc[pos]) << 24) | (uint8_t(acc[pos + 1]) << 16) | (uint8_t(acc[pos + 2]) << 8) |
                       uint8_t(acc[pos + 3]);
          if (acc.size() - pos < 4 + n) break;
          pos += 4 + n;
          ++frames;
        }
        acc.erase(0, pos);
        if (frames >= count) break;
      }
      char ok = 1;
      full_write(c, &ok, 1);
    }
    _exit(0);
  }
  close(ls);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a)) die("connect");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  using clk = std::chrono::steady_clock;
  if (mode == "pingpong") {
    std::vector<char> buf(size, 'x');
    std::vector<double> rtts;
    for (long i = 0; i < count; ++i) {
      auto t0 = clk::now();
      full_write(s, buf.data(), size);
      if (!full_read(s, buf.data(), size)) die("read");
      rtts.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
    }
    std::sort(rtts.begin(), rtts.end());
    printf("{\"mode\":\"pingpong\",\"size\":%zu,\"count\":%ld,\"median_us\":%.2f,\"p99_us\":%.2f}\n", size, count,
           rtts[rtts.size() / 2], rtts[rtts.size() * 99 / 100]);
  } else {
    std::string frame(4 + size, 'x');
    frame[0] = char(size >> 24), frame[1] = char(size >> 16), frame[2] = char(size >> 8), frame[3] = char(size);
    // Write in batches, as a sender with write coalescing would.
    std::string batch;
    for (int i = 0; i < 64; ++i) batch += frame;
    auto t0 = clk::now();
    long sent = 0;
    while (sent < count) {
      long n = std::min<long>(64, count - sent);
      full_write(s, batch.data(), size_t(n) * frame.size());
      sent += n;
    }
    char ok;
    if (!full_read(s, &ok, 1)) die("read");
    double secs = std::chrono::duration<double>(clk::now() - t0).count();
    printf("{\"mode\":\"stream\",\"frame_bytes\":%zu,\"count\":%ld,\"per_s\":%.0f}\n", size, count,
           double(count) / secs);
  }
  close(s);
  waitpid(pid, nullptr, 0);
  return 0;
}
