// The JobRunner's rules with fake processes, clock and disk (job_fakes.h):
// no loop, no process, no file. The real implementations are tested
// together in jobs_test.cpp.
#include <gtest/gtest.h>
#include <signal.h>

#include <deque>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "job_fakes.h"
#include "jobs/jobs.h"

using namespace jsd;
using nlohmann::json;

namespace {

// What one call got back.
struct Replies {
  std::vector<json> job;  // every "job" body
  std::string out, err;
  bool ended = false;
  json last() const { return job.empty() ? json() : job.back(); }
  std::string type() const { return last().value("type", ""); }
  std::string error() const { return last().value("error", ""); }
  json record() const { return last().value("record", json()); }
};

struct Node {
  Config cfg = default_config();
  fake::Journal journal;
  fake::Clock clock;
  fake::Disk disk{journal};
  fake::Processes procs{journal};
  std::unique_ptr<JobRunner> runner;
  std::deque<Replies> replies;  // stable addresses for the callbacks

  Node() {
    cfg.node = "beta";
    cfg.jobs["hello"] = JobDef{{"/bin/echo", "hello"}, "", {}, 0, 4, false, {}};
  }
  void open() {
    runner = std::make_unique<JobRunner>(cfg, clock, procs, disk);
    std::string err;
    ASSERT_TRUE(runner->open(err)) << err;
  }
  Replies& call(const std::string& from, const std::string& body) {
    Replies& r = replies.emplace_back();
    runner->handle(from, body, [&r](const std::string& object, std::string text, bool more) {
      EXPECT_FALSE(r.ended) << "a reply after the last one: " << text;
      if (object == "job.stdout") r.out += text;
      if (object == "job.stderr") r.err += text;
      if (object == "job") r.job.push_back(json::parse(text));
      if (!more) r.ended = true;
    });
    return r;
  }
  Replies& submit(const std::string& from, const std::string& id, const std::string& job = "hello",
                  const std::string& extra = "") {
    return call(from, R"({"op":"submit","id":")" + id + R"(","job":")" + job + "\"" + extra + "}");
  }
};

TEST(JobRunner, RunsAJobAndKeepsItsRecord) {
  Node n;
  n.open();
  Replies& r = n.submit("alpha", "r1");
  ASSERT_EQ(n.procs.started(), 1u);
  EXPECT_EQ(n.procs.procs.begin()->second->spec.argv, (std::vector<std::string>{"/bin/echo", "hello"}));
  EXPECT_EQ(r.type(), "started");
  n.procs.output("r1", 1, "hello\n");
  n.procs.output("r1", 2, "warn\n");
  n.procs.exit("r1", 3);
  ASSERT_TRUE(r.ended);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "warn\n");
  EXPECT_EQ(r.record().value("state", ""), "exited");
  EXPECT_EQ(r.record().value("exit_status", -1), 3);
  n.clock.advance(100);  // the batched write
  EXPECT_EQ(n.disk.state("r1"), "exited");
  EXPECT_EQ(n.disk.record("r1").value("stdout_tail", ""), "hello\n");
}

TEST(JobRunner, SameIdTwiceRunsOnce) {
  Node n;
  n.open();
  n.submit("alpha", "d1");
  n.procs.exit("d1", 0);
  Replies& again = n.submit("alpha", "d1");
  EXPECT_EQ(n.procs.started(), 1u);
  EXPECT_EQ(again.type(), "duplicate");
  EXPECT_EQ(again.record().value("state", ""), "exited");
}

// The same id while it runs (a cron retry) attaches: it gets the output
// from then on and the job's end, and the job runs once (issue 7 item 9).
TEST(JobRunner, RunningDuplicateAttaches) {
  Node n;
  n.open();
  Replies& first = n.submit("alpha", "d2");
  n.procs.output("d2", 1, "before\n");
  Replies& again = n.submit("alpha", "d2");
  EXPECT_EQ(n.procs.started(), 1u);
  EXPECT_TRUE(n.procs.signals.empty());
  EXPECT_EQ(again.type(), "attached");
  EXPECT_EQ(again.last().value("stdout_first", -1), 7);
  EXPECT_FALSE(again.ended);
  n.procs.output("d2", 1, "after\n");
  n.procs.exit("d2", 4);
  EXPECT_TRUE(first.ended);
  EXPECT_EQ(first.out, "before\nafter\n");
  EXPECT_EQ(first.record().value("state", ""), "exited");
  ASSERT_TRUE(again.ended);
  EXPECT_EQ(again.out, "after\n");
  EXPECT_EQ(again.record().value("exit_status", -1), 4);
}

// --attach: what is kept of the output from the offsets asked for, then
// the rest as it comes, then the end; a finished job at once.
TEST(JobRunner, AttachFollowsFromTheOffsetsAsked) {
  Node n;
  n.open();
  n.submit("alpha", "a1");
  n.procs.output("a1", 1, "0123456789");
  n.procs.kept["a1"] = "0123456789";
  Replies& att = n.call("alpha", R"({"op":"attach","id":"a1","stdout_from":4})");
  EXPECT_EQ(att.job.at(0).value("type", ""), "attached");
  EXPECT_EQ(att.job.at(0).value("stdout_first", -1), 4);
  EXPECT_EQ(att.out, "456789");
  n.procs.output("a1", 1, "X");
  n.procs.exit("a1", 0);
  ASSERT_TRUE(att.ended);
  EXPECT_EQ(att.out, "456789X");
  Replies& late = n.call("alpha", R"({"op":"attach","id":"a1"})");
  ASSERT_TRUE(late.ended);
  EXPECT_EQ(late.out, "0123456789X");  // from the record's tail: the fake keeps no directory
  EXPECT_EQ(late.record().value("state", ""), "exited");
  Replies& other = n.call("gamma", R"({"op":"attach","id":"a1"})");
  EXPECT_EQ(other.error(), "job a1 was not submitted by gamma");
  Replies& none = n.call("alpha", R"({"op":"attach","id":"nope"})");
  EXPECT_EQ(none.error(), "no submission with id 'nope' on beta");
}

TEST(JobRunner, AnotherNodesIdIsTaken) {
  Node n;
  n.open();
  n.submit("alpha", "t1");
  Replies& other = n.submit("gamma", "t1");
  EXPECT_EQ(n.procs.started(), 1u);
  EXPECT_EQ(other.error(), "job id t1 is already taken on beta");
  EXPECT_FALSE(other.last().contains("record"));
}

// Only the submitting node (and this node itself) may see or cancel a job.
TEST(JobRunner, AnotherNodeMayNotSeeOrCancelAJob) {
  Node n;
  n.open();
  Replies& job = n.submit("alpha", "p1");
  Replies& peek = n.call("gamma", R"({"op":"status","id":"p1"})");
  EXPECT_EQ(peek.error(), "job p1 was not submitted by gamma");
  EXPECT_FALSE(peek.last().contains("record"));
  Replies& stop = n.call("gamma", R"({"op":"cancel","id":"p1"})");
  EXPECT_EQ(stop.error(), "job p1 was not submitted by gamma");
  EXPECT_TRUE(n.procs.signals.empty());
  EXPECT_FALSE(job.ended);

  Replies& own = n.call("alpha", R"({"op":"status","id":"p1"})");
  EXPECT_EQ(own.type(), "status");
  EXPECT_EQ(own.record().value("state", ""), "running");
  Replies& local = n.call("beta", R"({"op":"cancel","id":"p1"})");
  EXPECT_EQ(local.type(), "cancel");
  ASSERT_EQ(n.procs.signals.size(), 1u);
  EXPECT_EQ(n.procs.signals[0].second, SIGTERM);
  EXPECT_EQ(n.call("alpha", R"({"op":"status","id":"nope"})").error(), "no submission with id 'nope' on beta");
}

// A durable submission is on disk, synced, before its job starts: a crash
// right after the start cannot lose an acknowledged job.
TEST(JobRunner, DurableRecordIsSyncedBeforeTheJobStarts) {
  Node n;
  n.open();
  n.submit("alpha", "s1", "hello", R"(,"durable":true)");
  long synced = n.journal.find("write s1 queued sync");
  long started = n.journal.find("start s1");
  ASSERT_GE(synced, 0) << testing::PrintToString(n.journal.lines);
  ASSERT_GE(started, 0);
  EXPECT_LT(synced, started);
  EXPECT_GE(n.journal.find("write s1 running sync"), 0);
  // A job that is not durable is not written before it starts.
  n.submit("alpha", "s2");
  EXPECT_EQ(n.journal.find("write s2 queued sync"), -1);
  EXPECT_EQ(n.journal.find("write s2 queued async"), -1);
}

// A durable submission the node cannot write down is refused, not
// acknowledged (its sender keeps the refusal), nothing runs, and the id is
// free again for when there is room.
TEST(JobRunner, ADurableSubmissionThatCannotBeWrittenIsRefusedAndItsIdStaysFree) {
  Node n;
  n.open();
  n.disk.full = true;
  Replies& r = n.submit("alpha", "f1", "hello", R"(,"durable":true)");
  EXPECT_EQ(r.error(),
            "cannot accept job f1 on beta: its record cannot be written (the state directory is full or read-only)");
  EXPECT_EQ(n.procs.started(), 0u);
  n.disk.full = false;
  Replies& again = n.submit("alpha", "f1", "hello", R"(,"durable":true)");
  EXPECT_NE(again.type(), "error");
  EXPECT_EQ(n.procs.started(), 1u);
}

// A record that could not be written (the disk filled while its job ran)
// is tried again every second and lands once there is room: the job's true
// end, not whatever was on disk before.
TEST(JobRunner, ARecordThatCouldNotBeWrittenLandsOnceThereIsRoom) {
  Node n;
  n.open();
  n.submit("alpha", "w1");
  n.disk.full = true;
  n.procs.exit("w1", 3);
  n.clock.advance(100);  // the batched write: fails
  EXPECT_GE(n.journal.find("full w1"), 0);
  EXPECT_NE(n.disk.state("w1"), "exited");
  n.clock.advance(1000);  // a retry, still full
  EXPECT_NE(n.disk.state("w1"), "exited");
  n.disk.full = false;
  n.clock.advance(1000);
  EXPECT_EQ(n.disk.state("w1"), "exited");
  EXPECT_EQ(n.disk.record("w1").value("exit_status", -1), 3);
  // Nothing left to retry: no more writes.
  size_t writes = n.journal.lines.size();
  n.clock.advance(5000);
  EXPECT_EQ(n.journal.lines.size(), writes);
}

// What a node that stopped left behind: its queued jobs start when the node
// starts again, its running ones are recorded as unknown (254: jsd cannot know how they ended).
TEST(JobRunner, RestartStartsQueuedJobsAndRecordsRunningOnesUnknown) {
  Node n;
  n.cfg.jobs["hello"].max_parallel = 1;
  n.cfg.jobs["gone"] = JobDef{{"/bin/true"}, "", {}, 0, 1, false, {}};
  n.open();
  n.submit("alpha", "k1");
  n.submit("alpha", "k2", "hello", R"(,"durable":true)");
  n.submit("alpha", "k3", "gone");
  n.submit("alpha", "k4", "gone");  // waits: written (a moment later)
  n.clock.advance(200);             // k1's running record is written
  EXPECT_EQ(n.disk.state("k1"), "running");
  EXPECT_EQ(n.disk.state("k2"), "queued");
  EXPECT_EQ(n.disk.state("k4"), "queued");
  ASSERT_EQ(n.procs.started(), 2u);

  // The node dies (no stop_all) and starts again on the same disk, with
  // "gone" removed from its config.
  n.runner.reset();
  n.procs.procs.clear();
  n.cfg.jobs.erase("gone");
  n.open();
  EXPECT_EQ(n.procs.started(), 1u);
  EXPECT_NE(n.procs.pid_of("k2"), 0);
  n.clock.advance(100);
  json unknown = n.disk.record("k1");
  EXPECT_EQ(unknown.value("state", ""), "unknown");
  EXPECT_EQ(unknown.value("error", ""), "the node stopped while the job ran");
  EXPECT_EQ(unknown.value("exit_status", 0), 254);
  json refused = n.disk.record("k4");
  EXPECT_EQ(refused.value("state", ""), "failed");
  EXPECT_EQ(refused.value("error", ""), "no job 'gone' on beta");
  EXPECT_EQ(refused.value("exit_status", 0), 255);
  n.procs.exit("k2", 0);
  EXPECT_EQ(n.disk.state("k2"), "exited");
}

// A listener restarted while the supervisor hangs: the dead listener had
// sent it the start of w1, whose record was not written yet. The waiting
// submitter's re-sent submission of w1 (a resumption) waits until the
// supervisor has listed its jobs — it took w1's start first — and then
// finds w1's run: never a second start, never "started here before".
TEST(JobRunner, ASubmissionWaitsUntilTheSupervisorListsItsJobs) {
  Node n;
  n.procs.defer_ready = true;
  n.open();
  Replies& r = n.submit("alpha", "w1", "hello", R"(,"resume":true,"stdout_from":0,"stderr_from":0)");
  Replies& other = n.submit("alpha", "w2");
  EXPECT_EQ(n.procs.started(), 0u);
  EXPECT_TRUE(r.job.empty());
  EXPECT_TRUE(other.job.empty());
  // The supervisor goes on: it ran w1 (the dead listener's start).
  json kept = {{"id", "w1"},         {"job", "hello"},     {"from", "alpha"},
               {"state", "running"}, {"submitted", 1.7e9}, {"started", 1.7e9}};
  n.procs.before = {{"w1", kept.dump()}};
  JobEnd end;
  end.known = true;
  end.exit_code = 0;
  end.ended = 1.7e9 + 1;
  n.procs.ended_before["w1"] = end;
  n.procs.kept["w1"] = "hello\n";
  n.procs.list();
  EXPECT_EQ(n.procs.pid_of("w1"), 0) << "w1 was started a second time";
  ASSERT_FALSE(r.job.empty());
  EXPECT_EQ(r.error(), "");
  EXPECT_EQ(r.record().value("state", ""), "exited");
  EXPECT_EQ(r.record().value("exit_status", -1), 0);
  // The other waited too, and runs now.
  EXPECT_NE(n.procs.pid_of("w2"), 0);
  EXPECT_EQ(other.type(), "started");
}

TEST(JobRunner, AllowListsDecideWhoMayRun) {
  Node n;
  n.cfg.jobs["guarded"] = JobDef{{"/bin/true"}, "", {}, 0, 4, true, {"gamma", "@web"}};
  n.cfg.allow_adhoc = {{"gamma", true}};
  n.open();
  std::vector<json> audited;
  n.runner->audit = [&](json entry, bool) {
    audited.push_back(entry);
    return true;
  };
  n.runner->in_group = [](const std::string& peer, const std::string& group) {
    return peer == "delta" && group == "web";
  };
  EXPECT_EQ(n.submit("alpha", "a1", "guarded").error(), "beta refused job guarded: alpha is not allowed to run it");
  EXPECT_EQ(n.submit("gamma", "a2", "guarded").type(), "started");
  EXPECT_EQ(n.submit("delta", "a3", "guarded").type(), "started");
  EXPECT_EQ(n.submit("beta", "a4", "guarded").type(), "started");  // the node's own tools
  EXPECT_NE(n.call("alpha", R"({"op":"submit","id":"a5","argv":["/bin/id"]})").error().find("not allowed"),
            std::string::npos);
  EXPECT_EQ(n.call("gamma", R"({"op":"submit","id":"a6","argv":["/bin/id"]})").type(), "started");
  EXPECT_EQ(n.procs.started(), 4u);
  EXPECT_EQ(n.procs.procs.at(n.procs.pid_of("a6"))->spec.argv, std::vector<std::string>{"/bin/id"});
  ASSERT_EQ(audited.size(), 6u);
  EXPECT_EQ(audited[0].value("verdict", ""), "refused");
  EXPECT_EQ(audited[1].value("verdict", ""), "allowed");
  EXPECT_EQ(audited[5].value("what", ""), "adhoc");
  // A decision that cannot be written down is a refusal.
  n.runner->audit = [](json, bool) { return false; };
  EXPECT_EQ(n.submit("gamma", "a7", "guarded").error(), "cannot write the audit log on beta");
  EXPECT_EQ(n.procs.started(), 4u);
}

TEST(JobRunner, MaxParallelQueuesTheRest) {
  Node n;
  n.cfg.jobs["hello"].max_parallel = 1;
  n.open();
  Replies& q1 = n.submit("alpha", "q1");
  Replies& q2 = n.submit("alpha", "q2");
  EXPECT_EQ(q1.type(), "started");
  EXPECT_EQ(q2.type(), "queued");
  EXPECT_EQ(q2.last().value("position", 0), 1);
  n.clock.advance(20);
  EXPECT_EQ(n.disk.state("q2"), "queued");  // one that waits is written (a moment later)
  EXPECT_EQ(n.procs.started(), 1u);
  EXPECT_EQ(n.runner->status_json()["queued"], 1);
  n.procs.exit("q1", 0);
  EXPECT_EQ(n.procs.started(), 2u);
  EXPECT_EQ(q2.type(), "started");
}

// Issue 24: a job that waited is judged again at its start. Its submitter
// lost the right to run it meanwhile (a revoked key, no longer a peer, an
// allow list emptied): it does not start, its record says why, the audit
// has a refusal "at":"start", and its submitter hears the end (255).
TEST(JobRunner, AQueuedJobIsJudgedAgainAtItsStart) {
  Node n;
  n.cfg.jobs["hello"].max_parallel = 1;
  std::vector<json> audited;
  bool revoked = false;
  n.open();
  n.runner->audit = [&](json entry, bool) {
    audited.push_back(entry);
    return true;
  };
  n.runner->key_of = [](const std::string& from) { return from == "alpha" ? "b2:x" : "b2:" + from; };
  n.runner->peer_ok = [&](const std::string& from, const std::string& key, bool& known, std::string& why) {
    // The key it was submitted with is the record's.
    EXPECT_EQ(key, from == "alpha" ? "b2:x" : "b2:" + from);
    if (revoked && key == "b2:x") why = "the key of alpha (b2:x) is revoked";
    return !(revoked && key == "b2:x");
  };
  n.submit("gamma", "s1");
  Replies& s2 = n.submit("alpha", "s2");
  Replies& s3 = n.submit("gamma", "s3");
  ASSERT_EQ(s2.type(), "queued");
  revoked = true;
  n.procs.exit("s1", 0);
  // s2 is refused at its start; s3, from a peer still in good standing, runs.
  ASSERT_TRUE(s2.ended);
  EXPECT_EQ(s2.record().value("state", ""), "failed");
  EXPECT_EQ(s2.record().value("exit_status", 0), 255);
  EXPECT_EQ(s2.record().value("error", ""),
            "cannot start the job: the key of alpha (b2:x) is revoked (checked again at its start)");
  EXPECT_EQ(n.procs.pid_of("s2"), 0);
  EXPECT_NE(n.procs.pid_of("s3"), 0);
  // Only the refusal is audited at a start (the acceptance was, before).
  ASSERT_EQ(audited.size(), 4u);
  bool found = false;
  for (auto& e : audited)
    if (e.value("id", "") == "s2" && e.value("at", "") == "start") {
      found = true;
      EXPECT_EQ(e.value("verdict", ""), "refused");
      EXPECT_EQ(e.value("reason", ""), "the key of alpha (b2:x) is revoked");
    }
  EXPECT_TRUE(found);
  // The allow list emptied: judged by the configuration of the moment.
  n.cfg.jobs["hello"].has_allow = true;
  n.cfg.jobs["hello"].allow = {};
  Replies& s4 = n.submit("gamma", "s4");  // refused at once: not queued
  EXPECT_EQ(s4.error(), "beta refused job hello: gamma is not allowed to run it");
  (void)s3;
}

TEST(JobRunner, TimeoutSendsTermThenKill) {
  Node n;
  n.cfg.jobs["slow"] = JobDef{{"/bin/sleep", "9"}, "", {}, 1.0, 4, false, {}};
  n.cfg.job_kill_grace_s = 5;
  n.open();
  Replies& r = n.submit("alpha", "o1", "slow");
  int pid = n.procs.pid_of("o1");
  n.clock.advance(999);
  EXPECT_TRUE(n.procs.signals.empty());
  n.clock.advance(1);
  ASSERT_EQ(n.procs.signals.size(), 1u);
  EXPECT_EQ(n.procs.signals[0], std::make_pair(pid, SIGTERM));
  n.clock.advance(5000);  // it ignores SIGTERM
  ASSERT_EQ(n.procs.signals.size(), 2u);
  EXPECT_EQ(n.procs.signals[1], std::make_pair(pid, SIGKILL));
  n.procs.exit("o1", 0, SIGKILL);
  ASSERT_TRUE(r.ended);
  EXPECT_EQ(r.record().value("state", ""), "timeout");
  EXPECT_EQ(r.record().value("exit_status", 0), 137);
}

TEST(JobRunner, CancelEndsARunningOrAQueuedJob) {
  Node n;
  n.cfg.jobs["hello"].max_parallel = 1;
  n.open();
  Replies& running = n.submit("alpha", "c1");
  Replies& queued = n.submit("alpha", "c2");
  EXPECT_EQ(n.call("alpha", R"({"op":"cancel","id":"c2"})").record().value("state", ""), "cancelled");
  ASSERT_TRUE(queued.ended);
  EXPECT_EQ(queued.record().value("state", ""), "cancelled");
  EXPECT_EQ(n.call("alpha", R"({"op":"cancel","id":"c1"})").type(), "cancel");
  ASSERT_EQ(n.procs.signals.size(), 1u);
  EXPECT_EQ(n.procs.signals[0].second, SIGTERM);
  n.procs.exit("c1", 0, SIGTERM);
  EXPECT_EQ(running.record().value("state", ""), "cancelled");
  EXPECT_EQ(running.record().value("exit_status", 0), 143);
  EXPECT_EQ(n.procs.started(), 1u);  // c2 never ran
}

// jsd's own failure to start a job (pipes, descriptors) is 255 and a
// record; a command that cannot be executed is the job's 127, as in a shell.
TEST(JobRunner, AJobThatCannotStartGetsARecordAndJsdsCode) {
  Node n;
  n.open();
  n.procs.fail_next = true;
  n.procs.fail_with = {"pipe: Too many open files", false};
  Replies& r = n.submit("alpha", "f1");
  ASSERT_TRUE(r.ended);
  EXPECT_EQ(r.type(), "ended");
  EXPECT_EQ(r.record().value("state", ""), "failed");
  EXPECT_EQ(r.record().value("error", ""), "cannot start pipe: Too many open files");
  EXPECT_EQ(r.record().value("exit_status", 0), 255);
  n.clock.advance(100);
  EXPECT_EQ(n.disk.record("f1").value("exit_status", 0), 255);
  EXPECT_EQ(n.call("alpha", R"({"op":"status","id":"f1"})").record().value("exit_status", 0), 255);

  n.procs.fail_next = true;
  n.procs.fail_with = {"/nonexistent: No such file or directory", true};
  Replies& missing = n.submit("alpha", "f2");
  EXPECT_EQ(missing.record().value("state", ""), "failed");
  EXPECT_EQ(missing.record().value("exit_status", 0), 127);
  // The next job starts as usual.
  EXPECT_EQ(n.submit("alpha", "f3").type(), "started");
}

// The reproducers of issue 13: each gets an error reply, none starts a
// job or takes the runner down.
TEST(JobRunner, PoisonRequestsGetAnError) {
  Node n;
  n.open();
  const char* bodies[] = {R"({"op":"submit","id":8})",
                          R"({"op":"submit","id":"p1","job":"hello","stream":"yes"})",
                          R"({"op":"submit","id":"p2","job":"hello","durable":1})",
                          R"({"op":"submit","id":"p3","job":7})",
                          R"({"op":"status","id":8})",
                          R"({"op":"cancel","id":8})",
                          R"({"op":"status","id":["x"]})",
                          R"({"op":"cancel","id":{}})",
                          R"({"op":"submit","id":"p4","job":"hello","expires":"soon"})",
                          R"({"op":8})",
                          R"([1,2])",
                          "not json"};
  for (const char* b : bodies) {
    Replies& r = n.call("alpha", b);
    ASSERT_TRUE(r.ended) << b;
    EXPECT_EQ(r.type(), "error") << b;
    EXPECT_EQ(r.error().rfind("malformed job request", 0), 0u) << b << ": " << r.error();
  }
  EXPECT_EQ(n.call("alpha", R"({"op":"submit","id":"p5","argv":"ls"})").error(), "argv must be an array");
  EXPECT_EQ(n.call("alpha", R"({"op":"submit","id":"p6","argv":[1]})").error(), "argv must be an array of strings");
  EXPECT_EQ(n.call("alpha", R"({"op":"submit","id":"p7","params":{"X":1}})").error(),
            "parameter X must be a string without NUL bytes");
  EXPECT_EQ(n.call("alpha", R"({"op":"fly"})").error(), "unknown job operation 'fly'");
  EXPECT_EQ(n.procs.started(), 0u);
  EXPECT_EQ(n.submit("alpha", "ok1").type(), "started");
}

// Anything thrown inside a request is one error reply and one log line.
TEST(JobRunner, AnExceptionInsideIsAnErrorReply) {
  Node n;
  n.open();
  n.runner->audit = [](json, bool) -> bool { throw std::runtime_error("disk on fire"); };
  testing::internal::CaptureStderr();
  Replies& r = n.submit("alpha", "e1");
  std::string log = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ended);
  EXPECT_EQ(r.error(), "internal error: disk on fire");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  n.runner->audit = nullptr;
  EXPECT_EQ(n.submit("alpha", "e2").type(), "started");
}

TEST(JobRunner, ExpiredSubmissionIsNotRun) {
  Node n;
  n.open();
  Replies& r = n.submit("alpha", "x1", "hello", R"(,"expires":1000)");
  EXPECT_NE(r.error().find("expired before it reached beta"), std::string::npos);
  EXPECT_EQ(n.procs.started(), 0u);
}

TEST(JobRunner, OutputPausesWhileTheSubmitterIsBehind) {
  Node n;
  n.open();
  size_t backlog = 0;
  n.runner->backlog = [&](const std::string&) { return backlog; };
  Replies& r = n.submit("alpha", "b1");
  auto& proc = *n.procs.procs.at(n.procs.pid_of("b1"));
  backlog = JobRunner::kHighWater;
  n.procs.output("b1", 1, "x");
  EXPECT_TRUE(proc.paused);
  backlog = JobRunner::kLowWater + 1;
  n.clock.advance(50);
  EXPECT_TRUE(proc.paused);
  backlog = JobRunner::kLowWater;
  n.clock.advance(10);
  EXPECT_FALSE(proc.paused);
  // Output that waits for room is kept however long the job has been gone.
  backlog = JobRunner::kHighWater;
  n.procs.output("b1", 1, "y");
  EXPECT_TRUE(proc.paused);
  n.procs.exit("b1", 0, 0, false);
  n.clock.advance(60000);
  EXPECT_FALSE(r.ended);
  backlog = 0;
  n.clock.advance(2000);
  EXPECT_FALSE(proc.paused);
  ASSERT_TRUE(r.ended);
  EXPECT_EQ(r.out, "xy");
}

// A background process that keeps the pipes open does not hold the job.
TEST(JobRunner, OutputIsAwaitedOnlyBrieflyAfterTheExit) {
  Node n;
  n.open();
  Replies& r = n.submit("alpha", "w1");
  n.procs.exit("w1", 0, 0, false);
  n.clock.advance(1999);
  EXPECT_FALSE(r.ended);
  n.clock.advance(1);
  ASSERT_TRUE(r.ended);
  EXPECT_EQ(r.record().value("state", ""), "exited");
}

TEST(JobRunner, StopAllEndsRunningJobsAndKeepsQueuedOnes) {
  Node n;
  n.cfg.jobs["hello"].max_parallel = 1;
  n.open();
  int idle = 0;
  n.runner->on_idle = [&] { ++idle; };
  n.submit("alpha", "z1");
  n.submit("alpha", "z2");
  n.runner->stop_all();
  ASSERT_EQ(n.procs.signals.size(), 1u);
  EXPECT_EQ(idle, 0);
  n.procs.exit("z1", 0, SIGTERM);
  EXPECT_EQ(idle, 1);
  EXPECT_EQ(n.procs.started(), 1u);
  EXPECT_EQ(n.disk.state("z2"), "queued");
  EXPECT_EQ(n.disk.state("z1"), "killed");
}

}  // namespace

// issue 7: a --no-wait submission that waited in its sender's outbox keeps
// its submission time; when it reached the node is recorded apart.
TEST(JobRunner, TheRecordKeepsTheSubmittersTimeAndTheArrivalApart) {
  Node n;
  n.open();
  n.clock.advance(3600 * 1000);
  double now = n.clock.wall_time();
  Replies& late = n.submit("alpha", "t1", "hello", R"(,"durable":true,"stream":false,"submitted":1700000100.5)");
  EXPECT_EQ(late.type(), "accepted");
  EXPECT_DOUBLE_EQ(late.record().value("submitted", 0.0), 1700000100.5);
  EXPECT_DOUBLE_EQ(late.record().value("accepted", 0.0), now);
  // A submitter's clock ahead of ours: never submitted after it arrived.
  Replies& ahead = n.submit("alpha", "t2", "hello", R"(,"submitted":1800000000)");
  n.procs.exit("t2", 0);
  EXPECT_DOUBLE_EQ(ahead.record().value("submitted", 0.0), now);
  // No time in the request (an older jsd-submit): the arrival.
  Replies& plain = n.submit("alpha", "t3");
  n.procs.exit("t3", 0);
  EXPECT_DOUBLE_EQ(plain.record().value("submitted", 0.0), plain.record().value("accepted", -1.0));
  // The record on disk says the same after a restart.
  EXPECT_DOUBLE_EQ(n.disk.record("t1").value("submitted", 0.0), 1700000100.5);
  EXPECT_DOUBLE_EQ(n.disk.record("t1").value("accepted", 0.0), now);
  // Not a time: refused as malformed.
  EXPECT_NE(n.submit("alpha", "t4", "hello", R"(,"submitted":"yesterday")").error().find("\"submitted\""),
            std::string::npos);
}

TEST(JobRunner, HistoryListsTheCallersOwnRecordsNewestFirst) {
  Node n;
  n.open();
  for (const char* id : {"h1", "h2", "h3"}) {
    n.submit("alpha", id);
    n.procs.exit(id, 0);
    n.clock.advance(1000);
  }
  n.submit("gamma", "g1");  // someone else's: never shown to alpha
  Replies& h = n.call("alpha", R"({"op":"history","n":2})");
  ASSERT_EQ(h.type(), "history");
  json recs = h.last()["records"];
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].value("id", ""), "h3");
  EXPECT_EQ(recs[1].value("id", ""), "h2");
  EXPECT_EQ(recs[0].value("exit_status", -1), 0);
  EXPECT_FALSE(recs[0].contains("stdout_tail"));
  json all = n.call("alpha", R"({"op":"history"})").last()["records"];
  EXPECT_EQ(all.size(), 3u);  // default 20
  EXPECT_EQ(n.call("gamma", R"({"op":"history"})").last()["records"].size(), 1u);
  EXPECT_NE(n.call("alpha", R"({"op":"history","n":0})").error().find("\"n\""), std::string::npos);
  EXPECT_NE(n.call("alpha", R"({"op":"history","n":"x"})").error().find("\"n\""), std::string::npos);
}

TEST(JobRunner, JobsListsWhatTheCallerMayRun) {
  Node n;
  n.cfg.jobs["guarded"] = JobDef{{"/bin/true"}, "", {}, 0, 4, true, {"gamma", "@web"}};
  n.cfg.jobs["hello"].description = "says hello";
  n.cfg.allow_adhoc = {{"gamma", true}};
  n.open();
  n.runner->in_group = [](const std::string& peer, const std::string& group) {
    return peer == "delta" && group == "web";
  };
  auto names = [&](const std::string& from) {
    Replies& r = n.call(from, R"({"op":"jobs"})");
    std::string s;
    json jobs = r.last()["jobs"];
    for (auto& j : jobs) s += (s.empty() ? "" : " ") + j.value("name", "");
    return s + (r.last().value("adhoc", false) ? " +adhoc" : "");
  };
  EXPECT_EQ(names("alpha"), "hello");
  EXPECT_EQ(names("gamma"), "guarded hello +adhoc");
  EXPECT_EQ(names("delta"), "guarded hello");
  EXPECT_EQ(names("beta"), "guarded hello");  // the node's own tools
  json hello = n.call("alpha", R"({"op":"jobs"})").last()["jobs"][0];
  EXPECT_EQ(hello.value("description", ""), "says hello");
  EXPECT_EQ(hello.value("max_parallel", 0), 4);
}

// jsd-submit -i: only a job defined with "stdin": true takes input; the
// others refuse it (nothing runs). One that takes it is started with a
// stdin FIFO, and a job whose input cannot be opened is stopped, its
// record saying its input was cut.
TEST(JobRunner, InputOnlyToAJobThatTakesIt) {
  Node n;
  n.cfg.jobs["reads"] = JobDef{{"/bin/cat"}, "", {}, 0, 4, false, {}};
  n.cfg.jobs["reads"].reads_stdin = true;
  n.open();
  EXPECT_EQ(n.submit("alpha", "i1", "hello", R"(,"stdin":true)").error(),
            "job 'hello' on beta takes no input (its definition does not say \"stdin\": true)");
  EXPECT_EQ(n.procs.started(), 0u);
  EXPECT_EQ(n.submit("alpha", "i2", "reads").type(), "started");  // without input: /dev/null
  EXPECT_FALSE(n.procs.procs.at(n.procs.pid_of("i2"))->spec.input);
  Replies& r = n.submit("alpha", "i3", "reads", R"(,"stdin":true)");
  ASSERT_EQ(n.procs.started(), 2u);
  EXPECT_TRUE(n.procs.procs.at(n.procs.pid_of("i3"))->spec.input);
  // The fake process has no stdin to open: the input is cut, the job stopped.
  int pid = n.procs.pid_of("i3");
  ASSERT_EQ(n.procs.signals.size(), 1u);
  EXPECT_EQ(n.procs.signals[0], std::make_pair(pid, SIGTERM));
  n.procs.exit("i3", 0, SIGTERM);
  EXPECT_EQ(r.record().value("state", ""), "cancelled");
  EXPECT_EQ(r.record().value("error", "").rfind("its input was cut: ", 0), 0u) << r.record().dump();
  EXPECT_TRUE(r.record().value("stdin", false));
}

// A job queued with input when its node restarts never gets it: it is
// cancelled, not run on none.
TEST(JobRunner, AQueuedJobWithInputIsCancelledAtARestart) {
  Node n;
  n.cfg.jobs["reads"] = JobDef{{"/bin/cat"}, "", {}, 0, 1, false, {}};
  n.cfg.jobs["reads"].reads_stdin = true;
  n.open();
  n.call("alpha", R"({"op":"submit","id":"q1","job":"reads","durable":true,"stream":false})");
  n.call("alpha", R"({"op":"submit","id":"q2","job":"reads","durable":true,"stream":false,"stdin":true})");
  n.runner.reset();
  n.procs.procs.clear();
  n.open();
  json q2 = n.disk.record("q2");
  EXPECT_EQ(q2.value("state", ""), "cancelled");
  EXPECT_EQ(q2.value("error", ""), "its input was cut: the node restarted before the job started");
}
