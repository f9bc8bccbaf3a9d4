#include "job_supervisor.h"

#include <gtest/gtest.h>

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
