#include "jobs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "files.h"
#include "job_files.h"
#include "job_spawn.h"
#include "temp_dir.h"
#include "uvx.h"

using namespace jsd;

namespace {
// Each test's state dir is a jsd_test::TempDir: it goes at the end of the
// test's scope, whatever the test did.
Config job_config(const jsd_test::TempDir& dir) {
  Config cfg = default_config();
  cfg.node = "beta";
  cfg.state_dir = dir.path;
  return cfg;
}

struct Outcome {
  size_t stdout_bytes = 0;
  bool ended = false;
  nlohmann::json record;
};

ReplyFn collect(Outcome& o) {
  return [&o](const std::string& object, std::string body, bool more) {
    if (object == "job.stdout") o.stdout_bytes += body.size();
    if (!more) {
      o.ended = true;
      auto j = nlohmann::json::parse(body, nullptr, false);
      if (j.is_object() && j.contains("record"))
        o.record = j["record"];
      else
        o.record = j;
    }
  };
}
// A job's gate: a FIFO the test holds open read-write from the start, so
// neither the job's open (for reading) nor the test's write ever blocks, and
// what is written waits in the pipe until the job reads it.
class Gate {
 public:
  explicit Gate(const std::string& path) : fd_(open(path.c_str(), O_RDWR | O_CLOEXEC)) {}
  ~Gate() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  bool open_it() { return write(fd_, "go\n", 3) == 3; }

 private:
  int fd_;
};

// Waits for our child pid to end (its pidfd; the bound only ends a failed
// test) and reaps it, unless the listener's watch did.
bool ends_and_is_reaped(int pid) {
  if (pid <= 0) return false;
  int fd = int(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;  // ended, and reaped by the listener
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, 30000);
  while (rc < 0 && errno == EINTR);
  close(fd);
  // The listener's own watch may have reaped it first.
  return rc == 1 && (waitpid(pid, nullptr, 0) == pid || errno == ECHILD);
}
}  // namespace

TEST(Jobs, RunsAConfiguredJobAndReportsItsEnd) {
  jsd_test::TempDir dir("jobs-run");
  Config cfg = job_config(dir);
  cfg.jobs["three"] = JobDef{{"/bin/sh", "-c", "echo out; exit 3"}, "", {}, 0, 4, false, {}};
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  Outcome o;
  {
    JobRunner jr(&loop, cfg, self_dir());
    std::string err;
    ASSERT_TRUE(jr.open(err)) << err;
    jr.handle("alpha", R"({"op":"submit","id":"r1","job":"three"})", collect(o));
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(close_loop(&loop), 0);
  ASSERT_TRUE(o.ended);
  EXPECT_EQ(o.record.value("exit_status", -1), 3);
  EXPECT_EQ(o.stdout_bytes, 4u);
}

TEST(Jobs, RefusesWhatTheConfigDoesNotDefine) {
  jsd_test::TempDir dir("jobs-refuse");
  Config cfg = job_config(dir);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  Outcome o1, o2;
  {
    JobRunner jr(&loop, cfg, self_dir());
    std::string err;
    ASSERT_TRUE(jr.open(err)) << err;
    jr.handle("alpha", R"({"op":"submit","id":"x1","job":"nope"})", collect(o1));
    jr.handle("alpha", R"({"op":"submit","id":"x2","argv":["/bin/true"]})", collect(o2));
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(close_loop(&loop), 0);
  EXPECT_NE(o1.record.value("error", "").find("no job 'nope'"), std::string::npos);
  EXPECT_NE(o2.record.value("error", "").find("not allowed"), std::string::npos);
}

// A submitter whose link cannot keep up makes the job wait instead of this
// node's memory grow: output reading pauses above kHighWater and resumes,
// and nothing is lost.
TEST(Jobs, OutputPausesWhileTheSubmittersQueueIsFull) {
  jsd_test::TempDir dir("jobs-backpressure");
  Config cfg = job_config(dir);
  cfg.jobs["big"] = JobDef{{"/bin/sh", "-c", "head -c 3000000 /dev/zero"}, "", {}, 0, 4, false, {}};
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  Outcome o;
  int pauses = 0;
  {
    JobRunner jr(&loop, cfg, self_dir());
    std::string err;
    ASSERT_TRUE(jr.open(err)) << err;
    size_t backlog = JobRunner::kHighWater;  // full from the start
    jr.backlog = [&](const std::string& from) {
      EXPECT_EQ(from, "alpha");
      return backlog;
    };
    jr.on_pause = [&] {
      ++pauses;
      backlog = 0;  // the submitter catches up
    };
    jr.handle("alpha", R"({"op":"submit","id":"bp1","job":"big"})", collect(o));
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(close_loop(&loop), 0);
  EXPECT_EQ(pauses, 1);
  ASSERT_TRUE(o.ended);
  EXPECT_EQ(o.stdout_bytes, 3000000u);
  EXPECT_EQ(o.record.value("exit_status", -1), 0);
}

// A request with a field of the wrong type gets an error reply: it never
// takes the node down (nlohmann's value() throws on a wrong type).
TEST(Jobs, WrongFieldTypesGetAnErrorNotACrash) {
  jsd_test::TempDir dir("jobs-poison");
  Config cfg = job_config(dir);
  cfg.jobs["hello"] = JobDef{{"/bin/true"}, "", {}, 0, 4, false, {}};
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  const char* bodies[] = {R"({"op":"submit","id":8})",
                          R"({"op":"submit","id":"p1","job":"hello","stream":"yes"})",
                          R"({"op":"submit","id":"p2","job":"hello","durable":1})",
                          R"({"op":"submit","id":"p3","job":7})",
                          R"({"op":"status","id":["x"]})",
                          R"({"op":"cancel","id":{}})",
                          R"({"op":"submit","id":"p4","job":"hello","expires":"soon"})"};
  std::vector<Outcome> out(std::size(bodies));
  {
    JobRunner jr(&loop, cfg, self_dir());
    std::string err;
    ASSERT_TRUE(jr.open(err)) << err;
    for (size_t i = 0; i < std::size(bodies); ++i) jr.handle("alpha", bodies[i], collect(out[i]));
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(close_loop(&loop), 0);
  for (size_t i = 0; i < std::size(bodies); ++i) {
    ASSERT_TRUE(out[i].ended) << bodies[i];
    EXPECT_NE(out[i].record.value("error", "").find("malformed job request"), std::string::npos) << bodies[i];
  }
}

// When jsd itself cannot start a job (here: no descriptor left for the
// connections to the job supervisor it must start first, as under a
// connection flood), the job gets a "failed" record and jsd's failure code,
// 255, not the 127 of a command that does not exist.
TEST(Jobs, NoDescriptorsForTheJobIsJsdsFailure) {
  jsd_test::TempDir dir("jobs-emfile");
  Config cfg = job_config(dir);
  cfg.jobs["hello"] = JobDef{{"/bin/true"}, "", {}, 0, 4, false, {}};
  cfg.jobs["missing"] = JobDef{{"/nonexistent/command"}, "", {}, 0, 4, false, {}};
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  Outcome starved, missing;
  {
    JobRunner jr(&loop, cfg, self_dir());
    std::string err;
    ASSERT_TRUE(jr.open(err)) << err;
    // One request first, with descriptors to spare: under check-asan,
    // UBSan's first check of a type's vptr tests memory through a pipe,
    // which it cannot make once the limit is tight (a false report).
    jr.handle("alpha", R"({"op":"status","id":"warm"})", [](const std::string&, std::string, bool) {});
    // No descriptor above the lowest free one: no supervisor can be started.
    rlimit old{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0);
    ASSERT_GE(lowest, 0);
    close(lowest);
    rlimit tight = old;
    tight.rlim_cur = rlim_t(lowest);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
    jr.handle("alpha", R"({"op":"submit","id":"e1","job":"hello"})", collect(starved));
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    jr.handle("alpha", R"({"op":"submit","id":"m1","job":"missing"})", collect(missing));
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(close_loop(&loop), 0);
  ASSERT_TRUE(starved.ended);
  EXPECT_EQ(starved.record.value("state", ""), "failed");
  EXPECT_EQ(starved.record.value("exit_status", -1), 255);
  EXPECT_NE(starved.record.value("error", "").find("Too many open files"), std::string::npos) << starved.record;
  ASSERT_TRUE(missing.ended);
  EXPECT_EQ(missing.record.value("state", ""), "failed");
  EXPECT_EQ(missing.record.value("exit_status", -1), 127);
  EXPECT_NE(missing.record.value("error", "").find("cannot start /nonexistent/command"), std::string::npos);
}

// The supervisor outlives its listener: a job whose JobProcess is dropped
// (the listener died) runs on, its output goes to its directory, and a new
// PosixJobProcesses (a restarted listener) re-adopts it, follows its output
// from the offsets the supervisor names and gets its true end.
TEST(Jobs, ASupervisedJobIsReadoptedAfterItsListenerIsGone) {
  jsd_test::TempDir dir("adopt");
  Config cfg = job_config(dir);
  std::string jobs = cfg.state_dir + "/jobs", err;
  ASSERT_TRUE(make_dir(jobs, err)) << err;
  std::string fifo = cfg.state_dir + "/gate";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Gate gate(fifo);
  ASSERT_TRUE(gate.ok());
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int sup = 0;
  std::string out;
  int code = -2, sig = -2;
  JobEnd end;
  {
    PosixJobProcesses first(&loop, jobs, self_dir() + "/jsd-job", 4096);
    StartError serr;
    JobSpawn spec{{"/bin/sh", "-c", "echo one; read x < \"$GATE\"; echo two; exit 5"},
                  {"GATE=" + fifo, "PATH=/usr/bin:/bin"},
                  "",
                  "a1",
                  "{}"};
    auto p = first.start(spec, serr);
    ASSERT_TRUE(p) << serr.what;
    // A second start of the id is refused: its directory says it started.
    auto again = first.start(spec, serr);
    ASSERT_TRUE(again) << serr.what;  // answered on the loop
    std::string refused;
    JobEvents ev2;
    ev2.start_failed = [&](const StartError& e) { refused = e.what; };
    again->run(std::move(ev2));
    std::string seen;
    JobEvents ev;
    ev.output = [&](int, std::string_view d) { seen += d; };
    ev.output_closed = [](int) {};
    ev.exited = [](int, int) {};
    p->run(std::move(ev));
    while (seen != "one\n" || refused.empty()) ASSERT_NE(uv_run(&loop, UV_RUN_ONCE), 0) << seen;
    EXPECT_NE(refused.find("was started here before"), std::string::npos) << refused;
    sup = first.supervisor_pid();
    p.reset();  // the listener is gone; the supervisor is not
  }
  // The job blocks on its gate, its first line on disk (written before it
  // was forwarded).
  EXPECT_EQ(read_kept_output(job_dir(jobs, "a1"), 1, 0).data, "one\n");
  {
    PosixJobProcesses second(&loop, jobs, self_dir() + "/jsd-job", 4096);
    auto before = second.started_before();
    ASSERT_EQ(before.size(), 1u);
    EXPECT_EQ(before[0].first, "a1");
    // As JobRunner does: the jobs are adopted once the supervisor has
    // listed them, in when_ready's fn (adopt() before would take a1 for a
    // job that runs without a supervisor, and race the supervisor for its
    // end; after, the supervisor would have been let go: it ran none of ours).
    std::unique_ptr<JobProcess> p;
    bool listed = false;
    second.when_ready([&] {
      listed = true;
      p = second.adopt("a1", end);
    });
    while (!listed && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    ASSERT_TRUE(listed);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->first_offset(1), 4u);
    JobEvents ev;
    ev.output = [&](int fd, std::string_view d) { out += d; };
    ev.output_closed = [](int) {};
    ev.exited = [&](int c, int s) {
      code = c;
      sig = s;
    };
    ev.end = [&](const JobEnd& e) { end = e; };
    p->run(std::move(ev));
    ASSERT_TRUE(gate.open_it());
    // Its end is the last thing on the loop: uv_run may say so.
    while (code == -2 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
  }
  EXPECT_EQ(out, "two\n");
  EXPECT_EQ(code, 5);
  EXPECT_EQ(sig, 0);
  EXPECT_EQ(end.out_bytes, 8u);
  EXPECT_EQ(read_kept_output(job_dir(jobs, "a1"), 1, 0).data, "one\ntwo\n");
  EXPECT_EQ(close_loop(&loop), 0);
  // The supervisor tells the listener first, then writes its end into
  // job.json, forgets the job and, with no listener and no job, ends: its
  // end says the end is on disk (and that it removed its socket and let go
  // of its lock: the directory must not go while it removes things in it).
  // The first listener spawned it but let it go running a job: it is our
  // child, reaped here.
  ASSERT_TRUE(ends_and_is_reaped(sup));
  JobEnd on_disk;
  EXPECT_TRUE(read_job_end(job_dir(jobs, "a1"), on_disk));
  EXPECT_EQ(on_disk.exit_code, 5);
  EXPECT_EQ(on_disk.out_bytes, 8u);
  int lock = open((jobs + "/supervisor.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(lock, 0);
  EXPECT_EQ(flock(lock, LOCK_EX | LOCK_NB), 0);
  close(lock);
}

// A supervisor killed while its listener lives: the running job runs on
// (no SIGPIPE: its FIFOs), the listener reaps it (its subreaper), a new
// supervisor adopts it and reads on, and its end is true: exit status and
// every line. The next job runs under the new supervisor.
TEST(Jobs, ASupervisorKilledUnderItsListenerHandsItsJobsToTheNext) {
  jsd_test::TempDir dir("supkill");
  Config cfg = job_config(dir);
  std::string jobs = cfg.state_dir + "/jobs", err;
  ASSERT_TRUE(make_dir(jobs, err)) << err;
  std::string fifo = cfg.state_dir + "/gate";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Gate gate(fifo);
  ASSERT_TRUE(gate.ok());
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  int last = 0;
  {
    PosixJobProcesses procs(&loop, jobs, self_dir() + "/jsd-job", 4096);
    StartError serr;
    JobSpawn spec{{"/bin/sh", "-c", "echo up; read x < \"$GATE\"; echo after; exit 5"},
                  {"GATE=" + fifo, "PATH=/usr/bin:/bin"},
                  "",
                  "k1",
                  "{}"};
    auto p = procs.start(spec, serr);
    ASSERT_TRUE(p) << serr.what;
    int first = procs.supervisor_pid();
    ASSERT_GT(first, 0);
    int code = -2, started = 0;
    std::string seen;
    JobEvents ev;
    ev.started = [&](int pid) { started = pid; };
    ev.output = [&](int, std::string_view d) { seen += d; };
    ev.output_closed = [](int) {};
    ev.exited = [&](int c, int) { code = c; };
    p->run(std::move(ev));
    while (seen != "up\n") ASSERT_NE(uv_run(&loop, UV_RUN_ONCE), 0);
    ASSERT_GT(started, 0);
    EXPECT_EQ(p->pid(), started);
    ASSERT_EQ(kill(first, SIGKILL), 0);
    // The listener learns of the death from the process, then hands the job
    // over to a new supervisor.
    while (procs.supervisor_pid() == first) ASSERT_NE(uv_run(&loop, UV_RUN_ONCE), 0);
    ASSERT_TRUE(gate.open_it());
    while (code == -2 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    EXPECT_EQ(code, 5);
    EXPECT_EQ(seen, "up\nafter\n");
    EXPECT_NE(procs.supervisor_pid(), first);
    JobSpawn next{{"/bin/sh", "-c", "exit 4"}, {"PATH=/usr/bin:/bin"}, "", "k2", "{}"};
    auto q = procs.start(next, serr);
    ASSERT_TRUE(q) << serr.what;
    int code2 = -2;
    JobEvents ev2;
    ev2.output = [](int, std::string_view) {};
    ev2.output_closed = [](int) {};
    ev2.exited = [&](int c, int) { code2 = c; };
    q->run(std::move(ev2));
    // Its end is the last thing on the loop: uv_run may say so.
    while (code2 == -2 && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    EXPECT_EQ(code2, 4);
    last = procs.supervisor_pid();
  }
  EXPECT_EQ(close_loop(&loop), 0);
  // k1's end is written just after the listener was told; the supervisor,
  // with no listener and no job, ends after that.
  ASSERT_TRUE(ends_and_is_reaped(last));
  JobEnd on_disk;
  EXPECT_TRUE(read_job_end(job_dir(jobs, "k1"), on_disk));
  EXPECT_EQ(on_disk.out_bytes, 9u);
}
