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

#include "crossed_stdio.h"
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

// A child (cat) blocked reading a pipe whose write end we hold: its /proc
// entry shows the state the spawner gave it, after its exec. A byte it
// echoed back says it is past its start-up (the dynamic loader opens
// files for a moment) and waits in read(2).
struct WaitingChild {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  pid_t pid = -1;
  int rc = -1;
  explicit WaitingChild(ProcessSpec spec) {
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    spec.file = "/bin/cat";
    spec.argv = {"cat"};
    spec.fds[0] = in[0];
    spec.fds[1] = out[1];
    rc = spawn_process(spec, pid);
    close(in[0]);
    close(out[1]);
    char c = 0;
    if (rc != 0) return;
    EXPECT_EQ(write(in[1], "x", 1), 1);
    EXPECT_EQ(read(out[0], &c, 1), 1);
  }
  ~WaitingChild() {
    close(in[1]);
    close(out[0]);
    if (rc == 0) wait_status(pid);
  }
  std::set<std::string> fds() const {
    std::set<std::string> names;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
      names.insert(e.path().filename().string());
    return names;
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
  // The child's stdout from our fd 2 and its stderr from our fd 1.
  jsd_test::CrossedStdio x;
  ASSERT_TRUE(x.ok);
  ProcessSpec s;
  s.file = "/bin/ls";
  s.argv = {"ls", "-d", "/", "/nonexistent-jsd-spawner-test"};
  s.fds = {-1, 2, 1};
  pid_t pid = -1;
  int rc = spawn_process(s, pid);
  x.restore();
  ASSERT_EQ(rc, 0);
  std::string out = x.out(), err = x.err();
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
