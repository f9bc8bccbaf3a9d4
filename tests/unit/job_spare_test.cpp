#include "job_spare.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "files.h"
#include "job_files.h"
#include "job_table.h"
#include "temp_dir.h"

using namespace jsd;

namespace {
bool is_fifo(const std::string& p) {
  struct stat sb;
  return stat(p.c_str(), &sb) == 0 && S_ISFIFO(sb.st_mode);
}
size_t entries(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}
}  // namespace

// A spare holds everything a start needs but the record: the two FIFOs,
// opened (ours non-blocking for reading, the job's read-write), and an
// empty job.json, open for appending, that reads as no pid.
TEST(SpareDir, HoldsTheFifosOpenAndAnEmptyJobFile) {
  jsd_test::TempDir d("spare");
  SpareDir sp;
  std::string err;
  ASSERT_TRUE(sp.make(d.path, err)) << err;
  EXPECT_EQ(sp.path.rfind(d.path + "/.spare-", 0), 0u) << sp.path;
  EXPECT_TRUE(is_fifo(job_fifo(sp.path, 1)));
  EXPECT_TRUE(is_fifo(job_fifo(sp.path, 2)));
  EXPECT_FALSE(std::filesystem::exists(job_fifo(sp.path, 0)));  // stdin only for a job with input
  for (int fd : {sp.dirfd, sp.out_read, sp.out_write, sp.err_read, sp.err_write, sp.job_file}) EXPECT_GE(fd, 0);
  EXPECT_TRUE(fcntl(sp.out_read, F_GETFL) & O_NONBLOCK);
  EXPECT_EQ(fcntl(sp.out_write, F_GETFL) & O_ACCMODE, O_RDWR);
  // What the job writes reaches our read end.
  ASSERT_EQ(write(sp.err_write, "x", 1), 1);
  char c = 0;
  EXPECT_EQ(read(sp.err_read, &c, 1), 1);
  EXPECT_EQ(c, 'x');
  int pid = 0;
  uint64_t ticks = 0;
  EXPECT_FALSE(read_job_pid(sp.path, pid, ticks)) << "an empty job.json has no pid";
  EXPECT_TRUE(fcntl(sp.job_file, F_GETFL) & O_APPEND);
  ASSERT_TRUE(write_job_pid(sp.job_file, 1234, 5678));
  ASSERT_TRUE(read_job_pid(sp.path, pid, ticks));
  EXPECT_EQ(pid, 1234);
  EXPECT_EQ(ticks, 5678u);
  EXPECT_FALSE(write_job_pid(-1, 1, 1));
  std::string path = sp.path;
  sp.discard();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(sp.dirfd, -1);
  EXPECT_EQ(entries(d.path), 0u);
}

// job.json: the record's line, then the pid and end lines as they are
// appended; only whole lines count, and an older supervisor's files (a
// record without newline, pid, end.json) are read too.
TEST(JobFile, RecordPidAndEndLines) {
  jsd_test::TempDir d("jobfile");
  std::string dir = d.path + "/j.d";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  int fd = open((dir + "/job.json").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  std::string rec = job_record_line("{\"id\":\"j\",\n \"job\":\"x\"}");
  EXPECT_EQ(rec, "{\"id\":\"j\",  \"job\":\"x\"}\n") << "one line";
  ASSERT_EQ(write(fd, rec.data(), rec.size()), ssize_t(rec.size()));
  int pid = 0;
  uint64_t ticks = 0;
  JobEnd e;
  EXPECT_FALSE(read_job_pid(dir, pid, ticks));
  EXPECT_FALSE(read_job_end(dir, e));
  ASSERT_TRUE(write_job_pid(fd, 42, 7));
  ASSERT_TRUE(read_job_pid(dir, pid, ticks));
  EXPECT_EQ(pid, 42);
  EXPECT_EQ(ticks, 7u);
  EXPECT_FALSE(read_job_end(dir, e));
  JobEnd out;
  out.known = true;
  out.exit_code = 3;
  out.ended = 1.7e9;
  out.out_bytes = 5;
  ASSERT_TRUE(append_job_end(fd, job_end_text(out)));
  close(fd);
  ASSERT_TRUE(read_job_end(dir, e));
  EXPECT_EQ(e.exit_code, 3);
  EXPECT_EQ(e.out_bytes, 5u);
  EXPECT_EQ(read_job_record_text(dir), "{\"id\":\"j\",  \"job\":\"x\"}");
  EXPECT_TRUE(read_job_pid(dir, pid, ticks)) << "the end line does not hide the pid";

  std::string_view r, p, en;
  split_job_file("{}\npid 1 2\nend {\"ended\"", r, p, en);
  EXPECT_EQ(r, "{}");
  EXPECT_EQ(p, "1 2");
  EXPECT_EQ(en, "") << "a line without its newline is not written yet";
  split_job_file("{}", r, p, en);
  EXPECT_EQ(r, "{}");
  EXPECT_EQ(p, "");

  // An older supervisor's directory: job.json without newline, pid, end.json.
  std::string old = d.path + "/old.d";
  ASSERT_EQ(mkdir(old.c_str(), 0700), 0);
  std::string err;
  ASSERT_TRUE(write_file_atomic(old + "/job.json", "{\"id\":\"old\"}", false, err)) << err;
  EXPECT_EQ(read_job_record_text(old), "{\"id\":\"old\"}");
  EXPECT_FALSE(read_job_pid(old, pid, ticks));
  ASSERT_TRUE(write_file_atomic(old + "/pid", "77 8\n", false, err)) << err;
  ASSERT_TRUE(read_job_pid(old, pid, ticks));
  EXPECT_EQ(pid, 77);
  EXPECT_FALSE(read_job_end(old, e));
  ASSERT_TRUE(write_file_atomic(old + "/end.json", job_end_text(out), false, err)) << err;
  ASSERT_TRUE(read_job_end(old, e));
  EXPECT_EQ(e.exit_code, 3);
  // A new supervisor that adopted it appends its end to that job.json.
  out.exit_code = 4;
  fd = open((old + "/job.json").c_str(), O_WRONLY | O_APPEND);
  ASSERT_TRUE(append_job_end(fd, job_end_text(out)));
  close(fd);
  ASSERT_TRUE(read_job_end(old, e));
  EXPECT_EQ(e.exit_code, 4) << "job.json's end first";
  EXPECT_EQ(read_job_record_text(old), "{\"id\":\"old\"}");
}

// One a killed supervisor left goes when the next starts; jobs' and
// records' names stay.
TEST(SpareDir, LeftoversAreRemovedJobsStay) {
  jsd_test::TempDir d("spare-left");
  auto left = std::make_unique<SpareDir>();
  std::string err;
  ASSERT_TRUE(left->make(d.path, err)) << err;
  std::string p = left->path;
  left->path.clear();  // as if its process died: nothing removes it
  left.reset();
  ASSERT_TRUE(std::filesystem::exists(p));
  ASSERT_EQ(mkdir((d.path + "/j1.d").c_str(), 0700), 0);
  ASSERT_EQ(close(open((d.path + "/j1.json").c_str(), O_WRONLY | O_CREAT, 0600)), 0);
  remove_spares(d.path);
  EXPECT_FALSE(std::filesystem::exists(p));
  EXPECT_TRUE(std::filesystem::exists(d.path + "/j1.d"));
  EXPECT_TRUE(std::filesystem::exists(d.path + "/j1.json"));
  EXPECT_EQ(list_job_dirs(d.path), std::vector<std::string>{"j1"});
}

// The job table's start: the first makes its directory on the spot, the
// next takes the spare made once the answer was sent; a started job's
// directory has its pid, and an id started before is refused without
// losing the spare's files to it.
TEST(SpareDir, TheJobTableStartsFromTheSpare) {
  jsd_test::TempDir d("spare-table");
  using supervisor_parts::JobTable;
  auto table = std::make_unique<JobTable>(d.path, 1 << 20);
  auto started = [&](const std::string& id) {
    SupStart s{id, "", {"/bin/true"}, {"PATH=/bin:/usr/bin"}, R"({"id":")" + id + "\"}"};
    std::string reply = table->start(s);
    EXPECT_EQ(reply.size(), 5u) << "not S: " << reply;
    int pid = 0;
    uint64_t ticks = 0;
    EXPECT_TRUE(read_job_pid(job_dir(d.path, id), pid, ticks));
    if (pid > 0) waitpid(pid, nullptr, 0);
    return pid;
  };
  EXPECT_GT(started("a"), 0);
  EXPECT_EQ(entries(d.path), 1u) << "no spare before the loop asks for one";
  table->prepare_spare();
  EXPECT_EQ(entries(d.path), 2u) << "the spare";
  EXPECT_GT(started("b"), 0);
  EXPECT_EQ(entries(d.path), 2u) << "the spare became b.d";
  EXPECT_TRUE(is_fifo(job_fifo(job_dir(d.path, "b"), 1)));
  // Three files a job (issue 20: each costs CPU to create): the FIFOs and
  // job.json, which holds the record, then the pid.
  EXPECT_EQ(entries(job_dir(d.path, "b")), 3u);
  EXPECT_EQ(read_job_record_text(job_dir(d.path, "b")), R"({"id":"b"})");
  table->prepare_spare();
  // A second start of b: refused; its spare is not b's to keep.
  SupStart again{"b", "", {"/bin/true"}, {}, "{}"};
  std::string_view id;
  JobEnd e;
  ASSERT_TRUE(decode_sup_end(table->start(again), id, e));
  EXPECT_NE(e.error.find("started here before"), std::string::npos) << e.error;
  EXPECT_EQ(entries(d.path), 2u) << "a.d and b.d only";
  table->prepare_spare();
  EXPECT_EQ(entries(d.path), 3u);
  table.reset();  // a supervisor that ends removes its spare
  EXPECT_EQ(entries(d.path), 2u);
}
