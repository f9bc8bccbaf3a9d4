#include "job_supervisor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "frame.h"
#include "temp_dir.h"

using namespace jsd;

TEST(SupervisorMessages, StartRoundTrips) {
  SupStart s{"j1", "/tmp", {"/bin/echo", "a,b", ""}, {"A=1", "PATH=/bin"}, R"({"id":"j1"})"};
  SupStart d;
  ASSERT_TRUE(decode_sup_start(encode_sup_start(s), d));
  EXPECT_EQ(d.id, "j1");
  EXPECT_EQ(d.cwd, "/tmp");
  EXPECT_EQ(d.argv, s.argv);
  EXPECT_EQ(d.env, s.env);
  EXPECT_EQ(d.record, s.record);
}

TEST(SupervisorMessages, TruncatedOrPaddedStartsAreRefused) {
  std::string m = encode_sup_start({"j1", "", {"/bin/true"}, {}, "{}"});
  SupStart d;
  for (size_t n = 0; n < m.size(); ++n) EXPECT_FALSE(decode_sup_start(m.substr(0, n), d)) << n;
  EXPECT_FALSE(decode_sup_start(m + "x", d));
  // No command, no id.
  EXPECT_FALSE(decode_sup_start(encode_sup_start({"j1", "", {}, {}, "{}"}), d));
  EXPECT_FALSE(decode_sup_start(encode_sup_start({"", "", {"/bin/true"}, {}, "{}"}), d));
  // An element count larger than the bytes left is refused before any
  // allocation.
  std::string lie = std::string(1, 'R') + std::string("\0\0\0\1j\0\0\0\0\xff\xff\xff\xff", 13);
  EXPECT_FALSE(decode_sup_start(lie, d));
}

// A start with input (jsd-submit -i) carries a trailing flag; one without
// is as before, and any other trailing byte is refused.
TEST(SupervisorMessages, AStartSaysWhetherTheJobTakesInput) {
  SupStart in{"j1", "", {"/bin/cat"}, {}, "{}", true}, d;
  ASSERT_TRUE(decode_sup_start(encode_sup_start(in), d));
  EXPECT_TRUE(d.input);
  in.input = false;
  ASSERT_TRUE(decode_sup_start(encode_sup_start(in), d));
  EXPECT_FALSE(d.input);
  EXPECT_FALSE(decode_sup_start(encode_sup_start(in) + std::string(1, '\2'), d));
  EXPECT_FALSE(decode_sup_start(encode_sup_start(in) + std::string(2, '\1'), d));
}

TEST(SupervisorMessages, JobOutputEndAndListRoundTrip) {
  std::string_view id, bytes;
  int sig = 0, fd = 0;
  std::string kill = encode_sup_job(SupMsg::kill, "j2", 9);
  ASSERT_TRUE(decode_sup_job(kill, id, sig));
  EXPECT_EQ(id, "j2");
  EXPECT_EQ(sig, 9);
  std::string pause = encode_sup_job(SupMsg::pause, "");
  EXPECT_FALSE(decode_sup_job(pause, id, sig));

  std::string out = encode_sup_output("j2", 2, std::string("a\0b", 3));
  ASSERT_TRUE(decode_sup_output(out, id, fd, bytes));
  EXPECT_EQ(id, "j2");
  EXPECT_EQ(fd, 2);
  EXPECT_EQ(bytes, std::string_view("a\0b", 3));
  out[1 + 4 + 2] = 3;  // not a stream
  EXPECT_FALSE(decode_sup_output(out, id, fd, bytes));

  JobEnd e;
  e.known = true;
  e.exit_code = 7;
  e.out_bytes = 10;
  JobEnd got;
  std::string end = encode_sup_end("j2", e);
  ASSERT_TRUE(decode_sup_end(end, id, got));
  EXPECT_EQ(id, "j2");
  EXPECT_EQ(got.exit_code, 7);
  EXPECT_EQ(got.out_bytes, 10u);

  std::vector<SupJob> jobs = {{"a", 10, 1, 2}, {"b", 11, 0, 5}}, back;
  ASSERT_TRUE(decode_sup_jobs(encode_sup_jobs(jobs), back));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].id, "b");
  EXPECT_EQ(back[1].pid, 11);
  EXPECT_EQ(back[1].err, 5u);
  std::string list = encode_sup_jobs(jobs);
  EXPECT_FALSE(decode_sup_jobs(list.substr(0, list.size() - 1), back));
}

TEST(SupervisorArgs, NeedsTheJobsDirectory) {
  SupervisorOptions o;
  std::string err;
  const char* ok[] = {"jsd-job", "--jobs-dir", "/var/lib/jsd/jobs", "--keep", "4096"};
  ASSERT_TRUE(parse_supervisor_args(5, const_cast<char**>(ok), o, err)) << err;
  EXPECT_EQ(o.jobs_dir, "/var/lib/jsd/jobs");
  EXPECT_EQ(o.keep, 4096u);
  SupervisorOptions o2;
  const char* none[] = {"jsd-job", "--keep", "4096"};
  EXPECT_FALSE(parse_supervisor_args(3, const_cast<char**>(none), o2, err));
  const char* bad[] = {"jsd-job", "--jobs-dir", "/x", "--keep", "4k"};
  EXPECT_FALSE(parse_supervisor_args(5, const_cast<char**>(bad), o2, err));
  EXPECT_NE(err.find("--keep"), std::string::npos);
}

// A real supervisor (run_supervisor in a child process of the test) whose
// listener dies with a start request unread, while a new listener's
// control connection is already accepted: the new one's first frame must
// not make the supervisor drop the dead one's request. Its job runs and
// the new listener learns of it (a start the dead listener asked for is a
// job, not one the new listener may start again). SIGSTOP holds the
// supervisor while both connections fill, so that one poll round sees the
// new connection's frame and the old one's request at once (the new one is
// handled first).
namespace {

struct Conn {
  int fd = -1;
  FrameDecoder dec{1 << 20};
  explicit Conn(int f) : fd(f) {}
  ~Conn() {
    if (fd >= 0) close(fd);
  }
  void send(std::string_view payload) {
    std::string f = make_frame(payload);
    ASSERT_EQ(write(fd, f.data(), f.size()), ssize_t(f.size()));
  }
  // The next frame, waiting up to 10 s for it; "" on EOF or a timeout.
  std::string next() {
    std::string_view p;
    for (;;) {
      if (dec.next(p) == FrameDecoder::Result::frame) return std::string(p);
      pollfd pf{fd, POLLIN, 0};
      if (poll(&pf, 1, 10000) <= 0) return "";
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return "";
      dec.feed(buf, size_t(n));
    }
  }
};

int connect_to(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return -1;
  memcpy(a.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

size_t open_fds(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
  return n;
}

}  // namespace

TEST(SupervisorDrain, ADeadListenersLastStartIsTakenBeforeTheNewListener) {
  jsd_test::TempDir d("sup-drain");
  std::string jobs = d.path + "/jobs";
  ASSERT_EQ(mkdir(jobs.c_str(), 0700), 0);
  int c[2], e[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, e), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The supervisor's connections as 3 and 4, as a listener gives them.
    int hc = fcntl(c[1], F_DUPFD, 10), he = fcntl(e[1], F_DUPFD, 10);
    if (hc < 0 || he < 0 || dup2(hc, 3) != 3 || dup2(he, 4) != 4) _exit(1);
    SupervisorOptions o;
    o.jobs_dir = jobs;
    _exit(run_supervisor(o));
  }
  close(c[1]);
  close(e[1]);
  // On a failed assertion: nothing of the test's runs on.
  struct Reap {
    pid_t pid, job = 0;
    ~Reap() {
      if (job > 0) kill(-job, SIGKILL);
      if (pid > 0 && kill(pid, SIGKILL) == 0) waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  auto old_ctl = std::make_unique<Conn>(c[0]);
  auto old_ev = std::make_unique<Conn>(e[0]);
  std::vector<SupJob> list;
  ASSERT_TRUE(decode_sup_jobs(old_ev->next(), list));  // it listens now
  EXPECT_TRUE(list.empty());

  // The new listener's control connection, accepted (the supervisor holds
  // one more descriptor), its first frame not sent yet.
  size_t before = open_fds(pid);
  Conn ctl(connect_to(supervisor_socket(jobs)));
  ASSERT_GE(ctl.fd, 0);
  for (int i = 0; i < 10000 && open_fds(pid) == before; ++i) poll(nullptr, 0, 1);
  ASSERT_EQ(open_fds(pid), before + 1) << "the supervisor did not accept the connection";
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(st));

  // The old listener asks for a start and dies; the new one says which
  // connection is which.
  SupStart s{"drained", "", {"sleep", "1000"}, {"PATH=/usr/bin:/bin"}, "{}"};
  old_ctl->send(encode_sup_start(s));
  old_ctl.reset();
  old_ev.reset();
  ctl.send(std::string(1, char(SupMsg::control)));
  Conn ev(connect_to(supervisor_socket(jobs)));
  ASSERT_GE(ev.fd, 0);
  ev.send(std::string(1, char(SupMsg::events)));
  ASSERT_EQ(kill(pid, SIGCONT), 0);

  ASSERT_TRUE(decode_sup_jobs(ev.next(), list));
  ASSERT_EQ(list.size(), 1u) << "the dead listener's start was dropped";
  EXPECT_EQ(list[0].id, "drained");
  reap.job = list[0].pid;
  struct stat sb;
  EXPECT_EQ(stat(job_dir(jobs, "drained").c_str(), &sb), 0);

  // The job ends by its signal; with no listener and no job, so does the
  // supervisor.
  ctl.send(encode_sup_job(SupMsg::kill, "drained", SIGKILL));
  std::string_view id;
  JobEnd end;
  std::string m;
  do m = ev.next();
  while (!m.empty() && !decode_sup_end(m, id, end));
  EXPECT_EQ(end.signal, SIGKILL);
  close(ctl.fd), ctl.fd = -1;
  close(ev.fd), ev.fd = -1;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  reap.pid = reap.job = 0;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}
