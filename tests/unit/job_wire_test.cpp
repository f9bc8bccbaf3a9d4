// The verdict rule of job_wire.h, record by record: a job's own status, 255
// only for "did not run and will not run", 254 for every "cannot know".
#include "job_wire.h"

#include <gtest/gtest.h>

using namespace jsd;
using nlohmann::json;

namespace {

JobEnd end_of(const json& record) {
  JobEnd e;
  std::string err;
  EXPECT_TRUE(read_job_end(record, e, err)) << err << " in " << record.dump();
  return e;
}

void expect(const json& record, int status, ExitFrom from) {
  JobEnd e = end_of(record);
  EXPECT_EQ(e.exit_status(), status) << record.dump();
  EXPECT_EQ(e.exit_from(), from) << record.dump();
}

}  // namespace

TEST(JobWire, StateNamesRoundTrip) {
  for (auto s : {JobState::queued, JobState::running, JobState::exited, JobState::killed, JobState::timeout,
                 JobState::cancelled, JobState::failed, JobState::lost, JobState::unknown}) {
    JobState back = JobState::queued;
    ASSERT_TRUE(parse_job_state(job_state_name(s), back)) << job_state_name(s);
    EXPECT_EQ(back, s);
  }
  JobState s;
  EXPECT_FALSE(parse_job_state("Exited", s));
  EXPECT_FALSE(parse_job_state("", s));
  EXPECT_STREQ(exit_from_name(ExitFrom::job), "job");
  EXPECT_STREQ(exit_from_name(ExitFrom::jsd), "jsd");
}

TEST(JobWire, TheJobsOwnStatus) {
  expect({{"state", "exited"}, {"exit_code", 0}, {"started", 1}}, 0, ExitFrom::job);
  expect({{"state", "exited"}, {"exit_code", 3}, {"started", 1}}, 3, ExitFrom::job);
  expect({{"state", "killed"}, {"signal", 9}, {"started", 1}}, 137, ExitFrom::job);
  expect({{"state", "timeout"}, {"signal", 15}, {"started", 1}}, 143, ExitFrom::job);
  expect({{"state", "cancelled"}, {"signal", 15}, {"started", 1}}, 143, ExitFrom::job);
  // A command that could not be executed: 127, as a shell gives it.
  expect({{"state", "failed"}, {"error", "cannot start x"}}, 127, ExitFrom::job);
}

// A job may exit 254 or 255 itself: the status is the same number, but it
// is the job's.
TEST(JobWire, AJobsOwn254And255AreTheJobs) {
  expect({{"state", "exited"}, {"exit_code", 255}, {"started", 1}}, 255, ExitFrom::job);
  expect({{"state", "exited"}, {"exit_code", 254}, {"started", 1}}, 254, ExitFrom::job);
}

TEST(JobWire, NotRunAndWillNotRunIs255) {
  expect({{"state", "failed"}, {"jsd_failure", true}, {"error", "no descriptors"}}, 255, ExitFrom::jsd);
  expect({{"state", "cancelled"}, {"started", 0}}, 255, ExitFrom::jsd);
  expect({{"state", "cancelled"}}, 255, ExitFrom::jsd);
}

// Whatever a record says its exit_status is: a lost or unknown job may have
// run, so 254, never 255 (which promises it did not).
TEST(JobWire, CannotKnowIs254) {
  expect({{"state", "lost"}, {"exit_status", 255}, {"started", 1}}, 254, ExitFrom::jsd);
  expect({{"state", "lost"}, {"exit_code", 0}, {"started", 1}}, 254, ExitFrom::jsd);
  expect({{"state", "unknown"}, {"error", "its supervisor is gone"}}, 254, ExitFrom::jsd);
  // An end that says neither code nor signal, once it had started.
  expect({{"state", "killed"}, {"started", 1}}, 254, ExitFrom::jsd);
  expect({{"state", "cancelled"}, {"started", 5}}, 254, ExitFrom::jsd);
  // Not ended yet: nothing is known.
  expect({{"state", "running"}, {"started", 1}}, 254, ExitFrom::jsd);
  EXPECT_FALSE(job_state_finished(JobState::queued));
  EXPECT_TRUE(job_state_finished(JobState::unknown));
  EXPECT_TRUE(job_state_unknowable(JobState::lost));
  EXPECT_FALSE(job_state_unknowable(JobState::failed));
}

TEST(JobWire, WhatIsNotARecord) {
  JobEnd e;
  std::string err;
  EXPECT_FALSE(read_job_end(json::array(), e, err));
  EXPECT_FALSE(read_job_end(json::object(), e, err));
  EXPECT_NE(err.find("state"), std::string::npos) << err;
  EXPECT_FALSE(read_job_end({{"state", "vanished"}}, e, err));
  EXPECT_NE(err.find("vanished"), std::string::npos) << err;
  EXPECT_FALSE(read_job_end({{"state", 3}}, e, err));
  EXPECT_FALSE(read_job_end({{"state", "exited"}, {"exit_code", 256}}, e, err));
  EXPECT_FALSE(read_job_end({{"state", "exited"}, {"exit_code", "0"}}, e, err));
  EXPECT_FALSE(read_job_end({{"state", "killed"}, {"signal", 1e9}}, e, err));
  EXPECT_FALSE(read_job_end({{"state", "failed"}, {"jsd_failure", 1}}, e, err));
}
