// The node port (lib/node/node_port.h) after a peer proved its key: a real
// NodePort on 127.0.0.1 with its limits injected, real LinkServers whose
// queue-servers are stand-ins that never take a ticket (a script that reads
// its listener pipe until it closes), and the peer's handshakes made with
// the real initiator (handshake.h) on the same loop.
#include "node/node_port.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "base/uvx.h"
#include "link/handshake.h"
#include "link/identity.h"
#include "node/audit.h"
#include "node/link_clients.h"
#include "node/link_servers.h"
#include "node/peers.h"
#include "temp_dir.h"

using namespace jsd;

namespace {

struct NoServerEvents : ServerEvents {
  bool joined(const std::string&, const LinkClaim&) override { return false; }
  uint64_t delivered(const std::string&, uint64_t, uint64_t, const Event&) override { return 0; }
  size_t tool_backlog(uint64_t) const override { return 0; }
  void link_up(const std::string&) override {}
  void child_gone() override {
    if (on_child_gone) on_child_gone();
  }
  std::function<void()> on_child_gone;
};
struct NoClientEvents : ClientEvents {
  void link_state(const std::string&, LinkState, const std::string&) override {}
  void child_gone() override {}
};

// The outcome of one handshake as the initiator saw it.
struct Attempt {
  bool accepted = false, refused = false;
  uint16_t port = 0;
  std::string err;
};

class NodePortJoin : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(sodium_init() < 0);
    std::string err;
    ASSERT_TRUE(gen_node_key_file(dir_.file("alpha.key"), alpha_pub_, err)) << err;
    ASSERT_TRUE(gen_node_key_file(dir_.file("beta.key"), beta_pub_, err)) << err;
    // The queue-servers' stand-in: it holds its port and pipe, and takes no
    // ticket, so every queue-server started stays "joining".
    mkdir(dir_.file("bin").c_str(), 0700);
    std::ofstream(dir_.file("bin/jsd-queue-server")) << "#!/bin/sh\nexec cat <&4 >/dev/null\n";
    chmod(dir_.file("bin/jsd-queue-server").c_str(), 0700);
    mkdir(dir_.file("state").c_str(), 0700);
    // A free port for the node: found by binding, then given back.
    uint16_t port = 0;
    int fd = bind_free_port("127.0.0.1", 46000, 46999, port, err);
    ASSERT_GE(fd, 0) << err;
    ::close(fd);
    beta_.node = "beta";
    beta_.listen = Endpoint{"127.0.0.1", port};
    beta_.key_file = dir_.file("beta.key");
    beta_.peer_keys["alpha"] = {key_to_text(alpha_pub_)};
    beta_.state_dir = dir_.file("state");
    beta_.port_min = 45000;
    beta_.port_max = 45999;
    beta_.heartbeat_ms = 60000;  // the stand-ins send no heartbeat: not ended for it here
    beta_.handshake_timeout_ms = 60000;
    alpha_.node = "alpha";
    alpha_.key_file = dir_.file("alpha.key");
    alpha_.peer_keys["beta"] = {key_to_text(beta_pub_)};
    std::vector<std::string> errors;
    ASSERT_TRUE(beta_trust_.load(beta_, errors, time(nullptr))) << (errors.empty() ? "" : errors[0]);
    ASSERT_TRUE(alpha_trust_.load(alpha_, errors, time(nullptr))) << (errors.empty() ? "" : errors[0]);
  }

  // n handshakes from alpha to a node port with these limits, one after
  // another (each waits for its answer); the queue-servers they start stay.
  std::vector<Attempt> handshakes(const NodePortLimits& limits, int n) {
    std::vector<Attempt> out;
    with_loop([&](uv_loop_t* loop) {
      NoServerEvents sev;
      NoClientEvents cev;
      Peers peers(beta_);
      Audit audit(dir_.file("state/audit-refused.log"), 1 << 20);
      std::string err;
      EXPECT_TRUE(audit.open(err)) << err;
      LinkSpawn spawn(loop, dir_.file("bin"), "beta", false);  // no spawner: link processes by exec
      LinkServers servers(loop, beta_, dir_.file("bin"), spawn, sev);
      LinkClients clients(loop, beta_, peers, dir_.file("bin"), 1, spawn, cev);
      NodePort port(loop, beta_, beta_trust_, audit, servers, clients, &limits);
      EXPECT_TRUE(port.open(err)) << err;
      std::function<void()> next = [&] {
        if (int(out.size()) == n) return uv_stop(loop);
        attempt(loop, out, next);
      };
      next();
      uv_run(loop, UV_RUN_DEFAULT);
      joining_ = servers.joining("alpha");
      // The stand-ins go with their pipes; wait for every one to be reaped.
      port.close();
      sev.on_child_gone = [&] {
        if (servers.live() == 0) uv_stop(loop);
      };
      servers.stop();
      if (servers.live() > 0) uv_run(loop, UV_RUN_DEFAULT);
      servers.clear();
      return 0;
    });
    return out;
  }

  // One IK handshake as alpha; its outcome goes to out, then next().
  void attempt(uv_loop_t* loop, std::vector<Attempt>& out, std::function<void()>& next) {
    Hello h{"alpha", "127.0.0.1:4455", "beta", "", next_hello_time()};
    auto ini = std::make_shared<LinkInitiator>(alpha_trust_, h, "beta", beta_pub_);
    auto result = std::make_shared<Attempt>();
    Stream* s = Stream::tcp(loop);
    auto finish = [&out, &next, result] {
      out.push_back(*result);
      next();
    };
    s->on_frame = [s, ini, result](std::string_view f) {
      std::string reply, err;
      switch (ini->on_frame(f, reply, err)) {
        case LinkInitiator::Step::done:
          result->accepted = true;
          result->port = ini->port();
          break;
        case LinkInitiator::Step::refused:
          result->refused = true;
          result->err = err;
          break;
        case LinkInitiator::Step::send:
          return s->send(reply);
        case LinkInitiator::Step::failed:
          result->err = err;
          break;
      }
      s->close();
    };
    s->on_close = [finish, result](const std::string& why) {
      if (!result->accepted && !result->refused && result->err.empty()) result->err = "closed: " + why;
      finish();
    };
    int rc = s->connect(beta_.listen, [s, ini, result](int status) {
      std::string first, err;
      if (status != 0) return s->close(uv_error(status));
      s->start();
      if (!ini->first(first, err)) return s->close(err);
      s->send(first);
    });
    ASSERT_EQ(rc, 0) << uv_error(rc);
  }

  jsd_test::TempDir dir_{"nodeport"};
  Key32 alpha_pub_{}, beta_pub_{};
  Config alpha_, beta_;
  Trust alpha_trust_, beta_trust_;
  int joining_ = -1;
};

// A peer that proved its key may have max_joining_per_peer queue-servers
// waiting for its ticket at once; its next handshake is refused, saying
// why, before a port or a process is spent on it.
TEST_F(NodePortJoin, AHandshakeBeyondMaxJoiningPerPeerIsRefused) {
  NodePortLimits l;
  l.max_joining_per_peer = 2;
  std::vector<Attempt> a = handshakes(l, 3);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_TRUE(a[0].accepted) << a[0].err;
  EXPECT_TRUE(a[1].accepted) << a[1].err;
  EXPECT_NE(a[0].port, a[1].port);
  EXPECT_TRUE(a[2].refused) << "the third handshake: " << (a[2].accepted ? "accepted" : a[2].err);
  EXPECT_NE(a[2].err.find("too many handshakes in progress for alpha"), std::string::npos) << a[2].err;
  EXPECT_EQ(joining_, 2);
}

// The default: 4.
TEST_F(NodePortJoin, TheDefaultIsFourJoiningPerPeer) {
  NodePortLimits l;
  EXPECT_EQ(l.max_joining_per_peer, 4);
  std::vector<Attempt> a = handshakes(l, 5);
  ASSERT_EQ(a.size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(a[i].accepted) << i << ": " << a[i].err;
  EXPECT_TRUE(a[4].refused) << "the fifth handshake: " << (a[4].accepted ? "accepted" : a[4].err);
  EXPECT_EQ(joining_, 4);
}

}  // namespace
