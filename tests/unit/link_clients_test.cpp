// LinkClients (lib/node/link_clients.h) forms a node's links in waves: at
// most kFormingMax clients are started and not yet past their first
// handshake at once (issue 20: a 64-node mesh that started every link
// process at once never linked). The clients here are stand-ins that never
// answer (a script that reads its listener pipe until it closes), started by
// exec: what is counted is how many the node starts, and that a slot given
// back (a client that died) lets the next one start.
#include "node/link_clients.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>

#include "base/frame.h"
#include "base/uvx.h"
#include "link/keepalive.h"
#include "link/pipe_msg.h"
#include "link/queue_client.h"
#include "node/link_spawn.h"
#include "node/link_watch.h"
#include "node/peers.h"
#include "temp_dir.h"

using namespace jsd;

namespace {

struct NoClientEvents : ClientEvents {
  void link_state(const std::string&, LinkState, const std::string&) override {}
  void child_gone() override {}
};

// The keys whose client runs now, and their pids.
std::map<std::string, int> running(const LinkClients& clients) {
  std::map<std::string, int> out;
  for (auto& l : clients.links_json())
    if (l["pid"].get<int>() > 0) out[l["process"].get<std::string>().substr(strlen("QueueClient_"))] = l["pid"];
  return out;
}

// Turns of the loop until pred holds; false after many turns without it.
// A 10 ms tick wakes each turn, so a turn that has nothing to do does not
// sit until the clients' 60 s watch (the predicate is what is waited on).
template <typename Pred>
bool run_until(uv_loop_t* loop, Pred pred) {
  Timer tick(loop);
  tick.start(
      10, [] {}, 10);
  for (int i = 0; i < 3000 && !pred(); ++i) uv_run(loop, UV_RUN_ONCE);
  return pred();
}

// The stand-ins never say they are up: the window stays at its start
// (forming_window.h), and a client that dies at once (quick, not slow)
// neither widens nor narrows it.
TEST(LinkClients, FormsAtMostAWindowOfLinksAtOnceAndStartsTheNextWhenOneEnds) {
  const int w = FormingWindow::kStart;
  jsd_test::TempDir dir("clients");
  mkdir(dir.file("bin").c_str(), 0700);
  std::ofstream(dir.file("bin/jsd-client")) << "#!/bin/sh\ntrap '' TERM\nexec cat <&3 >/dev/null\n";
  chmod(dir.file("bin/jsd-client").c_str(), 0700);
  Config cfg = default_config();
  cfg.node = "hub";
  cfg.heartbeat_ms = 60000;  // the stand-ins never say they are alive: no watch kill here
  cfg.dead_after_ms = 180000;
  cfg.idle_heartbeat_ms = 60000;
  for (int i = 0; i < 20; ++i) cfg.peers["p" + std::to_string(i)] = Endpoint{"127.0.0.1", uint16_t(40000 + i)};
  Peers peers(cfg);
  int rc = with_loop([&](uv_loop_t* loop) {
    NoClientEvents ev;
    LinkSpawn spawn(loop, dir.file("bin"), "hub", false);  // by exec: no spawner in a unit test
    LinkClients clients(loop, cfg, peers, dir.file("bin"), 1, spawn, ev);
    for (int i = 0; i < 20; ++i) clients.ensure("p" + std::to_string(i));
    EXPECT_TRUE(run_until(loop, [&] { return clients.live() >= w; })) << clients.live();
    // More turns: the others wait for a slot, none is started.
    for (int i = 0; i < 50; ++i) uv_run(loop, UV_RUN_NOWAIT);
    auto first = running(clients);
    EXPECT_EQ(clients.live(), w);
    EXPECT_EQ(first.size(), size_t(w));
    // One of them dies before its handshake: its slot goes to a waiting
    // peer (the dead one's restart queues behind the others).
    kill(first.begin()->second, SIGKILL);
    EXPECT_TRUE(run_until(loop, [&] {
      auto now = running(clients);
      for (auto& [k, pid] : now)
        if (!first.count(k)) return true;
      return false;
    }));
    for (int i = 0; i < 50; ++i) uv_run(loop, UV_RUN_NOWAIT);
    EXPECT_EQ(clients.live(), w);
    clients.stop();
    clients.kill();
    EXPECT_TRUE(run_until(loop, [&] { return clients.live() == 0; }));
    clients.clear();
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

// The watch (link_watch.h, issue 20: B13). A stand-in client that says
// its link is up and then never speaks again is an idle link whose client
// hung. While every link is up and idle the listener's watch ticks every
// idle_heartbeat_ms, not every heartbeat_ms: the loop sleeps through
// heartbeat_ms after heartbeat_ms (red before: a tick each). An event
// queued for the hung client makes it busy: the watch ticks every
// heartbeat_ms again at once, and the client, silent for twice
// dead_after_ms, is replaced (red without LinkClients::watch_soon(): the
// watch would sleep until its next idle tick, up to 600 s away).
TEST(LinkClients, AnIdleListenerWatchSleepsAndAnEventWakesItForABusyLink) {
  jsd_test::TempDir dir("clients");
  mkdir(dir.file("bin").c_str(), 0700);
  PipeMsg up;
  up.type = PipeType::state;
  up.state = LinkState::up;
  up.peer = "p0";
  std::ofstream(dir.file("up.bin"), std::ios::binary) << make_frame(encode_pipe(up));
  std::ofstream(dir.file("bin/jsd-client"))
      << "#!/bin/sh\ntrap '' TERM\ncat '" << dir.file("up.bin") << "' >&3\nexec cat <&3 >/dev/null\n";
  chmod(dir.file("bin/jsd-client").c_str(), 0700);
  Config cfg = default_config();
  cfg.node = "hub";
  cfg.heartbeat_ms = 50;
  cfg.dead_after_ms = 200;          // busy: replaced after 400 ms of silence
  cfg.idle_heartbeat_ms = 600000;   // idle: the watch ticks every 600 s, beyond this test
  cfg.connect_at_startup = {"p0"};  // no end for being unused either
  cfg.peers["p0"] = Endpoint{"127.0.0.1", 40000};
  Peers peers(cfg);
  int rc = with_loop([&](uv_loop_t* loop) {
    NoClientEvents ev;
    LinkSpawn spawn(loop, dir.file("bin"), "hub", false);
    LinkClients clients(loop, cfg, peers, dir.file("bin"), 1, spawn, ev);
    clients.ensure("p0");
    auto state = [&] { return clients.links_json()[0]["state"].get<std::string>(); };
    EXPECT_TRUE(run_until(loop, [&] { return state() == "up"; })) << state();
    int first = running(clients)["p0"];
    // One second of an idle link: the loop wakes for its end, and at most
    // for a watch tick or two of the old grid, not for 20 heartbeats.
    for (int i = 0; i < 20; ++i) uv_run(loop, UV_RUN_NOWAIT);
    bool over = false;
    Timer end(loop);
    end.start(1000, [&] { over = true; });
    int wakes = 0;
    while (!over) uv_run(loop, UV_RUN_ONCE), ++wakes;
    EXPECT_LE(wakes, 3);
    EXPECT_EQ(running(clients)["p0"], first);  // idle and silent for 1 s: left alone
    auto t0 = std::chrono::steady_clock::now();
    clients.send("p0", EventView{});
    EXPECT_TRUE(run_until(loop, [&] {
      auto r = running(clients);
      return r.count("p0") && r["p0"] != first;
    }));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GE(ms, 400);  // not before its silence passed the busy limit
    // Within a few heartbeat_ms of that, not at the next idle tick (somewhere
    // in the next 600 s: without watch_soon() this fails but for a 1 % chance).
    EXPECT_LT(ms, 5000);
    clients.stop();
    clients.kill();
    EXPECT_TRUE(run_until(loop, [&] { return clients.live() == 0; }));
    clients.clear();
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

// Idle clients probe on a grid of heartbeat_ms (queue_client.cpp): two
// whose last frames came at different moments of the same second probe at
// the same instant, never later than idle_heartbeat_ms after their last
// frame and at most heartbeat_ms before. Red before: each probed exactly
// idle_heartbeat_ms after its own last frame.
TEST(QueueClient, IdleProbesFallOnTheHeartbeatGrid) {
  EXPECT_EQ(idle_probe_at(100'200, 1000, 15000), 115'000u);
  EXPECT_EQ(idle_probe_at(100'999, 1000, 15000), 115'000u);
  EXPECT_EQ(idle_probe_at(101'000, 1000, 15000), 116'000u);
  for (uint64_t rx : {7u, 999u, 123'456u}) {
    uint64_t at = idle_probe_at(rx, 1000, 15000);
    EXPECT_LE(at, rx + 15000);
    EXPECT_GT(at, rx + 14000);
  }
  // Where the idle interval is hardly longer than a beat: no grid.
  EXPECT_EQ(idle_probe_at(100'200, 1000, 1500), 101'700u);
}

// The two watches of a listener tick on one grid (link_watch.h): the
// coarse period is a multiple of the fine one, and from any moment the
// next ticks of both fall on instants the fine one also ticks at.
TEST(LinkWatch, CoarseAndFineTicksShareInstants) {
  Config cfg = default_config();
  cfg.heartbeat_ms = 300;
  cfg.idle_heartbeat_ms = 1000;
  cfg.dead_after_ms = 700;
  WatchTimes t = watch_times(cfg);
  EXPECT_EQ(t.fine, 300u);
  EXPECT_EQ(t.coarse, 900u);
  EXPECT_EQ(t.busy_limit, 1400u);
  EXPECT_EQ(t.idle_limit, 3400u);
  for (uint64_t now : {0u, 1u, 299u, 300u, 12'345u}) {
    uint64_t f = now + watch_delay(now, t.fine), c = now + watch_delay(now, t.coarse);
    EXPECT_GT(f, now);
    EXPECT_EQ(f % t.fine, 0u);
    EXPECT_EQ(c % t.fine, 0u);
    EXPECT_LE(c - now, t.coarse);
  }
  EXPECT_FALSE(silent_too_long(5000, 1600, 3400));
  EXPECT_TRUE(silent_too_long(5001, 1600, 3400));
}

// Linux's tcp_keepalive_timer for a peer that answers nothing from t = 0
// (its last frame): the first probe at idle_s, then one per intvl_s; the
// link ends at the first probe instant at which user_timeout has passed
// with a probe out (or, without one, after count probes).
uint64_t kernel_ends_link_at(const KeepaliveTimes& k, int* probes) {
  uint64_t t = uint64_t(k.idle_s) * 1000;
  int out = 0;
  while (k.user_timeout ? !(t >= k.user_timeout && out > 0) : out < k.count) {
    ++out;
    t += uint64_t(k.intvl_s) * 1000;
  }
  *probes = out;
  return t;
}

// Issue 20 (B13): the kernel finds a dead idle link (keepalive.h) within
// idle_heartbeat_ms + dead_after_ms, as jsd.conf(5) promises, and not on
// the first lost probe where dead_after_ms leaves room for more.
TEST(Keepalive, ADeadIdleLinkEndsWithinTheIdlePromise) {
  struct Case {
    int idle, dead;
  } cases[] = {{15000, 3000}, {1000, 1000}, {1500, 1000}, {2000, 2500}, {60000, 10000}, {3600000, 3600000}};
  for (const Case& c : cases) {
    Config cfg = default_config();
    cfg.idle_heartbeat_ms = c.idle;
    cfg.dead_after_ms = c.dead;
    ASSERT_TRUE(kernel_keepalive(cfg));
    KeepaliveTimes k = keepalive_times(cfg);
    EXPECT_LE(k.idle_s * 1000, c.idle);  // the first probe is early, never late
    int probes = 0;
    uint64_t end = kernel_ends_link_at(k, &probes);
    EXPECT_LE(end, uint64_t(c.idle + c.dead)) << c.idle << "/" << c.dead;
    EXPECT_GE(probes, c.dead >= 2000 ? 2 : 1) << c.idle << "/" << c.dead;
    // Without TCP_USER_TIMEOUT (the count) the same bound holds.
    KeepaliveTimes no_user = k;
    no_user.user_timeout = 0;
    EXPECT_LE(kernel_ends_link_at(no_user, &probes), uint64_t(c.idle + c.dead)) << c.idle << "/" << c.dead;
  }
  // Sub-second times: the kernel counts in seconds; jsd probes itself.
  Config cfg = default_config();
  cfg.idle_heartbeat_ms = 400;
  EXPECT_FALSE(kernel_keepalive(cfg));
  cfg.idle_heartbeat_ms = 15000;
  cfg.dead_after_ms = 900;
  EXPECT_FALSE(kernel_keepalive(cfg));
}

TEST(Keepalive, TheOptionsAreSetOnALinkSocket) {
  Config cfg = default_config();  // 15000 / 3000
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(set_link_keepalive(fd, cfg), "");
  auto get = [fd](int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0) << name;
    return v;
  };
  EXPECT_EQ(get(SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPIDLE), 15);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPINTVL), 1);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_KEEPCNT), 3);
  EXPECT_EQ(get(IPPROTO_TCP, TCP_USER_TIMEOUT), 17000);
  ::close(fd);
}

}  // namespace
