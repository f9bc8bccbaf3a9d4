// The one spawner (spawner.h): what a child gets, seen from outside it
// (/proc/PID of a child that waits on a pipe we hold), and what it never
// gets (a shell, our descriptors, our blocked or ignored signals).
#include "spawner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "temp_dir.h"

using namespace jsd;

namespace {

// Everything until EOF.
std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return s;
    s.append(buf, size_t(n));
  }
}

int wait_status(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

// A child blocked reading a pipe whose write end we hold: its /proc entry
// shows the state the spawner gave it, after its exec.
struct WaitingChild {
  int in[2] = {-1, -1};
  pid_t pid = -1;
  int rc = -1;
  explicit WaitingChild(ProcessSpec spec) {
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    spec.file = "/bin/cat";
    spec.argv = {"cat"};
    spec.fds[0] = in[0];
    rc = spawn_process(spec, pid);
    close(in[0]);
  }
  ~WaitingChild() {
    close(in[1]);
    if (rc == 0) wait_status(pid);
  }
  std::set<std::string> fds() const {
    std::set<std::string> out;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
      out.insert(e.path().filename().string());
    return out;
  }
  // A signal mask of /proc/PID/status, without the signals from 32 up,
  // which the C library keeps for itself (posix_spawn cannot reset them).
  unsigned long long mask(const std::string& name) const {
    return std::stoull(status_field(name), nullptr, 16) & 0x7fffffffULL;
  }
  std::string status_field(const std::string& name) const {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
    return "";
  }
};

}  // namespace

TEST(Spawner, ArgvIsPassedAsGivenWithNoShell) {
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ProcessSpec s;
  s.file = "/bin/echo";
  s.argv = {"echo", "a b", "$HOME", ";", "`id`", "*"};
  s.fds = {-1, out[1], 2};
  pid_t pid = -1;
  ASSERT_EQ(spawn_process(s, pid), 0);
  close(out[1]);
  EXPECT_EQ(read_all(out[0]), "a b $HOME ; `id` *\n");
  close(out[0]);
  EXPECT_EQ(wait_status(pid), 0);
}

TEST(Spawner, OnlyTheGivenDescriptorsReachTheChild) {
  // A descriptor of ours without close-on-exec (as a careless library
  // would leave one) stays behind all the same.
  int leak = open("/dev/null", O_RDONLY);
  ASSERT_GE(leak, 3);
  {
    WaitingChild c({});
    ASSERT_EQ(c.rc, 0);
    EXPECT_EQ(c.fds(), (std::set<std::string>{"0", "1", "2"}));
  }
  {
    ProcessSpec s;
    s.fds = {-1, 1, 2, -1, leak};  // five asked for: five given
    WaitingChild c(s);
    ASSERT_EQ(c.rc, 0);
    EXPECT_EQ(c.fds(), (std::set<std::string>{"0", "1", "2", "3", "4"}));
  }
  close(leak);
}

TEST(Spawner, SourcesAmongTheTargetsArePlacedRight) {
  // The child's stdout from our fd 2 and its stderr from our fd 1: a naive
  // dup2 in order would give it the same descriptor twice.
  int a[2], b[2];
  ASSERT_EQ(pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(b, O_CLOEXEC), 0);
  int saved1 = dup(1), saved2 = dup(2);
  ASSERT_GE(saved1, 0);
  ASSERT_GE(saved2, 0);
  dup2(a[1], 2);  // stdout's pipe as our 2
  dup2(b[1], 1);  // stderr's pipe as our 1
  ProcessSpec s;
  s.file = "/bin/ls";
  s.argv = {"ls", "-d", "/", "/nonexistent-jsd-spawner-test"};
  s.fds = {-1, 2, 1};
  pid_t pid = -1;
  int rc = spawn_process(s, pid);
  dup2(saved1, 1);
  dup2(saved2, 2);
  close(saved1);
  close(saved2);
  close(a[1]);
  close(b[1]);
  ASSERT_EQ(rc, 0);
  std::string out = read_all(a[0]), err = read_all(b[0]);
  close(a[0]);
  close(b[0]);
  wait_status(pid);
  EXPECT_EQ(out, "/\n");
  EXPECT_NE(err.find("nonexistent-jsd-spawner-test"), std::string::npos) << err;
}

TEST(Spawner, SignalsStartCleanAndTheSessionIsOwnOnlyWhenAsked) {
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
  struct sigaction ign {
  }, old_term{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGTERM, &ign, &old_term), 0);
  {
    ProcessSpec s;
    s.new_session = true;
    WaitingChild c(s);
    ASSERT_EQ(c.rc, 0);
    EXPECT_EQ(c.mask("SigBlk"), 0u);
    EXPECT_EQ(c.mask("SigIgn"), 0u);
    EXPECT_EQ(getsid(c.pid), c.pid);
  }
  {
    WaitingChild c({});
    ASSERT_EQ(c.rc, 0);
    EXPECT_EQ(c.mask("SigBlk"), 0u);
    EXPECT_EQ(c.mask("SigIgn"), 0u);
    EXPECT_EQ(getsid(c.pid), getsid(0));
  }
  sigaction(SIGTERM, &old_term, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST(Spawner, NamesAreLookedUpInTheGivenPath) {
  std::vector<std::string> env = {"PATH=/nonexistent-jsd:/bin:/usr/bin"};
  ProcessSpec s;
  s.file = "true";
  s.argv = {"true"};
  s.env = &env;
  pid_t pid = -1;
  ASSERT_EQ(spawn_process(s, pid), 0);
  EXPECT_EQ(wait_status(pid), 0);
  env = {"PATH=/nonexistent-jsd"};
  EXPECT_EQ(spawn_process(s, pid), ENOENT);
  jsd_test::TempDir d("spawner");
  std::string f = d.path + "/notexec";
  std::ofstream(f) << "#!/bin/sh\n";
  env = {"PATH=" + d.path};
  s.file = "notexec";
  EXPECT_EQ(spawn_process(s, pid), EACCES);
  int err = 0;
  EXPECT_EQ(find_program("sh", "/nonexistent-jsd::/bin", err), "/bin/sh");
  EXPECT_EQ(find_program("./x", "", err), "./x");
}

TEST(Spawner, FailuresAreReturnedAndNothingRuns) {
  ProcessSpec s;
  pid_t pid = -1;
  s.file = "/nonexistent-jsd/prog";
  s.argv = {"prog"};
  EXPECT_EQ(spawn_process(s, pid), ENOENT);
  s.file = "/bin/true";
  s.argv = {"true"};
  s.cwd = "/nonexistent-jsd";
  EXPECT_EQ(spawn_process(s, pid), ENOENT);
  EXPECT_EQ(pid, -1);
  s.cwd = "/";
  s.argv.clear();
  EXPECT_EQ(spawn_process(s, pid), EINVAL);
  EXPECT_EQ(pid, -1);
}
