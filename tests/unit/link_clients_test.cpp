// LinkClients (lib/node/link_clients.h) forms a node's links in waves: at
// most kFormingMax clients are started and not yet past their first
// handshake at once (issue 20: a 64-node mesh that started every link
// process at once never linked). The clients here are stand-ins that never
// answer (a script that reads its listener pipe until it closes), started by
// exec: what is counted is how many the node starts, and that a slot given
// back (a client that died) lets the next one start.
#include "node/link_clients.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <string>

#include "base/uvx.h"
#include "node/link_spawn.h"
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

}  // namespace
