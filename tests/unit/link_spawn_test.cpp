// The link spawner (issue 20): link processes forked already past exec,
// handed their descriptors over a socketpair (SCM_RIGHTS), children of the
// listener, named as the seed names them; and a spawner that is stopped
// mid-assignment or killed costs no link: the listener starts the process by
// exec instead, and starts a new spawner.
#include "link_spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "identity.h"
#include "link_spawner.h"
#include "pipe_msg.h"
#include "temp_dir.h"
#include "uvx.h"

using namespace jsd;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

ino_t inode_of(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

// In a child: the given descriptors become 3, 4 (a source already at 3 or
// 4 included), /dev/null is 0, and nothing else of the parent's is open.
TEST(LinkSpawner, PlaceDescriptorsGivesExactlyTheGivenOnes) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  int extra = open("/dev/zero", O_RDONLY);  // not close-on-exec: must still not reach the child
  ASSERT_GE(extra, 0);
  ino_t want_a = inode_of(p[1]), want_b = inode_of(extra);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Swapped on purpose: the write end goes to 4, /dev/zero to 3.
    if (place_descriptors({extra, p[1]}) != 0) _exit(2);
    int bad = 0;
    if (inode_of(3) != want_b || inode_of(4) != want_a) bad |= 4;
    if (inode_of(0) != inode_of("/dev/null")) bad |= 8;
    for (int fd = 5; fd < 1024; ++fd)
      if (fcntl(fd, F_GETFD) >= 0) bad |= 16;
    if ((fcntl(3, F_GETFD) & FD_CLOEXEC) || (fcntl(4, F_GETFD) & FD_CLOEXEC)) bad |= 32;
    char b = char(bad);
    _exit(write(4, &b, 1) == 1 ? 0 : 3);
  }
  close(p[1]);
  close(extra);
  char got = 1;
  EXPECT_EQ(read(p[0], &got, 1), 1);
  EXPECT_EQ(got, 0) << "bits: 4 wrong 3/4, 8 no /dev/null on 0, 16 another descriptor open, 32 close-on-exec";
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  close(p[0]);
}

TEST(LinkSpawner, RequestRoundTripsAndRejectsMalformed) {
  SpawnRequest r{LinkKind::server, {"QueueServer_beta", "--config", "/x/y.json", "beta"}};
  std::string m = encode_spawn_request(r);
  SpawnRequest back;
  std::string err;
  ASSERT_TRUE(decode_spawn_request(m.data(), m.size(), back, err)) << err;
  EXPECT_EQ(back.kind, LinkKind::server);
  EXPECT_EQ(back.argv, r.argv);
  EXPECT_FALSE(decode_spawn_request("x\0", 2, back, err));
  EXPECT_FALSE(decode_spawn_request("cabc", 4, back, err));  // not NUL-terminated
}

namespace {

// A node's worth of the real thing: the built jsd-client as spawner, and a
// QueueClient to a port nobody listens on, whose first state report on its
// pipe says it runs with descriptor 3 ours.
class LinkSpawnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* b = getenv("JSD_BIN");
    if (!b || access((std::string(b) + "/jsd-client").c_str(), X_OK) != 0) GTEST_SKIP() << "no JSD_BIN";
    bin_ = b;
    Key32 pub;
    std::string err;
    ASSERT_TRUE(gen_node_key_file(dir_.file("alpha.key"), pub, err)) << err;
    conf_ = dir_.file("alpha.json");
    std::ofstream(conf_) << R"({"node": "alpha", "key_file": ")" << dir_.file("alpha.key") << R"(", "state_dir": ")"
                         << dir_.file("state") << R"(", "log_level": "error", "reconnect_min_ms": 60000,
                         "reconnect_max_ms": 60000})";
    ASSERT_EQ(uv_loop_init(&loop_), 0);
  }
  void TearDown() override {
    if (!bin_.empty()) {
      EXPECT_EQ(close_loop(&loop_), 0);
    }
  }

  // Starts a client through spawn, waits for its first report, checks what
  // it is, and ends it. False if it did not start.
  bool one_client(LinkSpawn& spawn) {
    Stream* pipe = Stream::pipe(&loop_);
    SpawnSpec spec;
    spec.file = bin_ + "/jsd-client";
    spec.argv = {"QueueClient_127.0.0.1:1", "--config", conf_, "127.0.0.1:1"};
    spec.fds.push_back(ChildFd{-1, pipe});
    std::string err;
    Child* c = spawn.start(LinkKind::client, spec, err);
    EXPECT_NE(c, nullptr) << err;
    if (!c) {
      pipe->discard();
      return false;
    }
    int pid = c->pid();
    bool reported = false, exited = false;
    Timer guard(&loop_);
    guard.start(20000, [&] {
      ADD_FAILURE() << "no report from the client";
      c->kill(SIGKILL);
    });
    pipe->on_frame = [&](std::string_view p) {
      PipeMsg m;
      std::string e;
      if (reported || !decode_pipe(p, m, e) || m.type != PipeType::state) return;
      reported = true;  // it writes on its descriptor 3: the pipe we gave it
      std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
      EXPECT_NE(status.find("\nPPid:\t" + std::to_string(getpid()) + "\n"), std::string::npos) << status;
      std::string cmd = slurp("/proc/" + std::to_string(pid) + "/cmdline");
      while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
      EXPECT_EQ(cmd,
                std::string("QueueClient_127.0.0.1:1\0--config\0", 33) + conf_ + std::string(1, '\0') + "127.0.0.1:1");
      EXPECT_EQ(slurp("/proc/" + std::to_string(pid) + "/comm"), "jsd-client\n");
      c->kill(SIGTERM);
    };
    pipe->on_close = [](const std::string&) {};
    c->on_exit = [&](int64_t, int) {
      exited = true;
      guard.stop();
      pipe->discard();
    };
    pipe->start(1 << 20);
    while (!exited && uv_run(&loop_, UV_RUN_ONCE)) {
    }
    EXPECT_TRUE(reported);
    EXPECT_TRUE(exited);
    return reported && exited;
  }

  jsd_test::TempDir dir_{"spawn"};
  std::string bin_, conf_;
  uv_loop_t loop_{};
};

}  // namespace

TEST_F(LinkSpawnTest, ForksLinkProcessesAsOurChildren) {
  LinkSpawn spawn(&loop_, bin_, "alpha", true);
  std::string err;
  ASSERT_TRUE(spawn.open(err)) << err;
  int spawner = spawn.spawner_pid();
  EXPECT_TRUE(one_client(spawn));
  // It has answered: its own title is written (it does that first).
  std::string cmd = slurp("/proc/" + std::to_string(spawner) + "/cmdline");
  EXPECT_EQ(cmd.substr(0, cmd.find('\0')), "LinkSpawner_alpha");
  EXPECT_TRUE(one_client(spawn));
  EXPECT_EQ(spawn.forked(), 2u);
  EXPECT_EQ(spawn.execs(), 0u);
  EXPECT_EQ(spawn.spawner_pid(), spawner);
  spawn.close();
}

// Stopped while a request waits: after answer_ms the listener gives up on
// it (SIGKILL) and starts the link process by exec; the next request
// starts a new spawner.
TEST_F(LinkSpawnTest, SpawnerStoppedMidAssignmentCostsNoLink) {
  LinkSpawn spawn(&loop_, bin_, "alpha", true, 200, 0);
  std::string err;
  ASSERT_TRUE(spawn.open(err)) << err;
  int first = spawn.spawner_pid();
  ASSERT_EQ(kill(first, SIGSTOP), 0);
  EXPECT_TRUE(one_client(spawn));
  EXPECT_EQ(spawn.execs(), 1u);
  EXPECT_EQ(spawn.forked(), 0u);
  EXPECT_EQ(spawn.spawner_pid(), 0);
  EXPECT_TRUE(one_client(spawn));
  EXPECT_EQ(spawn.forked(), 1u);
  EXPECT_NE(spawn.spawner_pid(), first);
  EXPECT_NE(spawn.spawner_pid(), 0);
  spawn.close();
}

// Killed between two requests, before the listener saw it end: the request
// finds its socket closed and the link process starts by exec.
TEST_F(LinkSpawnTest, SpawnerKilledCostsNoLink) {
  LinkSpawn spawn(&loop_, bin_, "alpha", true, 2000, 60000);
  std::string err;
  ASSERT_TRUE(spawn.open(err)) << err;
  int first = spawn.spawner_pid();
  ASSERT_EQ(kill(first, SIGKILL), 0);
  siginfo_t si{};
  ASSERT_EQ(waitid(P_PID, id_t(first), &si, WEXITED | WNOWAIT), 0);  // dead, not yet reaped
  EXPECT_TRUE(one_client(spawn));
  EXPECT_EQ(spawn.execs(), 1u);
  EXPECT_EQ(spawn.forked(), 0u);
  spawn.close();
}

namespace {

bool proc_fields(int pid, std::string& comm, int& ppid, unsigned long long& start) {
  std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t o = s.find('('), c = s.rfind(')');
  if (o == std::string::npos || c == std::string::npos || c + 2 > s.size()) return false;
  comm = s.substr(o + 1, c - o - 1);
  std::istringstream in(s.substr(c + 2));
  std::vector<std::string> v;
  for (std::string f; in >> f;) v.push_back(f);
  if (v.size() < 20) return false;
  ppid = std::stoi(v[1]);      // field 4
  start = std::stoull(v[19]);  // field 22
  return true;
}

// Our children named as link processes (zombies included) that started no
// earlier than `since` (clock ticks after boot), but `except`.
std::vector<int> link_children_since(unsigned long long since, int except) {
  std::vector<int> out;
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    int pid = std::stoi(name), ppid = 0;
    std::string comm;
    unsigned long long start = 0;
    if (pid == except || !proc_fields(pid, comm, ppid, start)) continue;
    if (ppid == getpid() && start >= since && (comm == "jsd-client" || comm == "jsd-queue-serve")) out.push_back(pid);
  }
  return out;
}

}  // namespace

// Killed (or stopped, then given up) between its fork and its answer: the
// link process it forked is our child that nobody named. It is killed and
// reaped once the spawner is gone (no zombie, no link process holding the
// link's descriptors), and the link starts by exec as before.
class SpawnerLostAfterFork : public LinkSpawnTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(SpawnerLostAfterFork, LeavesNoChild) {
  setenv("JSD_TEST_SPAWNER_AFTER_FORK", GetParam(), 1);
  LinkSpawn spawn(&loop_, bin_, "alpha", true, 300, 60000);
  std::string err;
  bool opened = spawn.open(err);
  unsetenv("JSD_TEST_SPAWNER_AFTER_FORK");
  ASSERT_TRUE(opened) << err;
  int first = spawn.spawner_pid();
  // What the spawner forks starts no earlier than the spawner.
  std::string comm;
  int ppid = 0;
  unsigned long long since = 0;
  ASSERT_TRUE(proc_fields(first, comm, ppid, since));
  ASSERT_TRUE(link_children_since(since, first).empty());
  EXPECT_TRUE(one_client(spawn));
  EXPECT_EQ(spawn.execs(), 1u);
  EXPECT_EQ(spawn.forked(), 0u);
  EXPECT_EQ(spawn.spawner_pid(), 0);
  // The sweep follows the spawner's end; the guard only bounds a failure.
  Timer guard(&loop_);
  bool late = false;
  guard.start(20000, [&] { late = true; });
  while (spawn.swept() == 0 && !late && uv_run(&loop_, UV_RUN_ONCE)) {
  }
  guard.stop();
  EXPECT_EQ(spawn.swept(), 1u);
  EXPECT_EQ(link_children_since(since, first), std::vector<int>{});
  spawn.close();
}

INSTANTIATE_TEST_SUITE_P(KillOrStop, SpawnerLostAfterFork, ::testing::Values("kill", "stop"));
