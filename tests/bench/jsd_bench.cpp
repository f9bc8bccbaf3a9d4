// Bench driver for what jsd's own tools cannot show: bulk notifications
// (B4) and a burst of job submissions over one control connection (B5).
// It talks to the local jsd-listener exactly as jsd-ping and jsd-submit do,
// so every event takes the product's path: control socket, listener,
// QueueClient, the encrypted link, QueueServer, the remote listener.
//
//   jsd_bench notify NODE COUNT BODY_BYTES    -> {"per_s":...}
//   jsd_bench submit NODE COUNT PARALLEL JOB  -> {"per_s":...}
// The node's configuration comes from $JSD_CONFIG.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "config.h"
#include "control.h"
#include "control_msg.h"
#include "frame.h"

using namespace jsd;
using clk = std::chrono::steady_clock;

static void full_write(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) {
      perror("write");
      exit(1);
    }
    off += size_t(n);
  }
}

// Reads messages until pred says stop.
template <typename F>
static void read_msgs(int fd, FrameDecoder& dec, F pred) {
  char buf[1 << 16];
  for (;;) {
    std::string_view p;
    while (dec.next(p) == FrameDecoder::Result::frame) {
      ControlMsg m;
      std::string err;
      if (!decode_control(p, m, err)) {
        fprintf(stderr, "bad message: %s\n", err.c_str());
        exit(1);
      }
      if (m.type == ControlType::error) {
        fprintf(stderr, "error: %s\n", m.why.c_str());
        exit(1);
      }
      if (!pred(m)) return;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      fprintf(stderr, "listener closed the connection\n");
      exit(1);
    }
    dec.feed(buf, size_t(n));
  }
}

static std::string send_msg(const std::string& node, Kind kind, uint64_t id, const std::string& object,
                            const std::string& body) {
  ControlMsg m;
  m.type = ControlType::send;
  m.ev.kind = kind;
  m.ev.id = id;
  m.ev.to = node;
  m.ev.object = object;
  m.ev.body = body;
  return make_frame(encode_control(m));
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: jsd_bench notify NODE COUNT BODY_BYTES | submit NODE COUNT PARALLEL JOB\n");
    return 2;
  }
  std::string mode = argv[1], node = argv[2];
  long count = strtol(argv[3], nullptr, 10);
  Config cfg;
  std::vector<std::string> errors;
  if (!load_config("", cfg, errors)) {
    for (auto& e : errors) fprintf(stderr, "%s\n", e.c_str());
    return 1;
  }
  std::string err;
  int fd = connect_control(cfg, err);
  if (fd < 0) {
    fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  FrameDecoder dec(64 << 20);
  if (mode == "notify") {
    size_t body_bytes = strtoul(argv[4], nullptr, 10);
    std::string body = "\"" + std::string(body_bytes > 2 ? body_bytes - 2 : 0, 'x') + "\"";
    // Warm the link first: one call, answered.
    full_write(fd, send_msg(node, Kind::call, 1, "ping", "{}"));
    read_msgs(fd, dec, [](const ControlMsg& m) { return !(m.type == ControlType::reply && m.ev.id == 1); });
    auto t0 = clk::now();
    std::string batch;
    for (long i = 0; i < count; ++i) {
      batch += send_msg(node, Kind::notify, uint64_t(i + 2), "ping", body);
      if (batch.size() > (1 << 20)) {
        full_write(fd, batch);
        batch.clear();
      }
    }
    // A call after them: the link is ordered, so its reply means every
    // notification before it was delivered on the remote node.
    uint64_t last = uint64_t(count + 2);
    batch += send_msg(node, Kind::call, last, "ping", "{}");
    full_write(fd, batch);
    read_msgs(fd, dec, [last](const ControlMsg& m) { return !(m.type == ControlType::reply && m.ev.id == last); });
    double secs = std::chrono::duration<double>(clk::now() - t0).count();
    printf("{\"mode\":\"notify\",\"count\":%ld,\"body_bytes\":%zu,\"per_s\":%.0f}\n", count, body_bytes,
           double(count) / secs);
    return 0;
  }
  if (mode == "submit" && argc >= 6) {
    long parallel = strtol(argv[4], nullptr, 10);
    std::string job = argv[5];
    char tag[32];
    snprintf(tag, sizeof tag, "b%d-%ld", int(getpid()), long(time(nullptr)));
    long sent = 0, done = 0, failed = 0;
    auto submit = [&] {
      ++sent;
      nlohmann::json b = {
          {"op", "submit"}, {"id", std::string(tag) + "-" + std::to_string(sent)}, {"job", job}, {"stream", true}};
      full_write(fd, send_msg(node, Kind::call, uint64_t(sent), "job", b.dump()));
    };
    auto t0 = clk::now();
    while (sent < parallel && sent < count) submit();
    read_msgs(fd, dec, [&](const ControlMsg& m) {
      if (m.type != ControlType::reply || m.ev.more) return true;  // started, output
      ++done;
      auto j = nlohmann::json::parse(m.ev.body, nullptr, false);
      if (!j.is_object() || !j.contains("record") || j["record"].value("exit_status", 255) != 0) ++failed;
      if (sent < count) submit();
      return done < count;
    });
    double secs = std::chrono::duration<double>(clk::now() - t0).count();
    printf("{\"mode\":\"submit\",\"count\":%ld,\"parallel\":%ld,\"failed\":%ld,\"per_s\":%.1f}\n", count, parallel,
           failed, double(count) / secs);
    return failed ? 1 : 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
