// The job side's decoders (requests, records, outbox files) and the job
// store's rules, with a fake disk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "files.h"
#include "job_fakes.h"
#include "jobs/job_request.h"
#include "jobs/job_store.h"
#include "jsd_limits.h"
#include "node/outbox.h"
#include "temp_dir.h"

using namespace jsd;
using nlohmann::json;

namespace {

std::string request_error(const std::string& body) {
  JobRequest req;
  std::string err;
  EXPECT_FALSE(parse_job_request(body, req, err)) << body;
  return err;
}

TEST(JobRequest, DecodesASubmission) {
  JobRequest req;
  std::string err;
  ASSERT_TRUE(parse_job_request(
      R"({"op":"submit","id":"s1","job":"hello","durable":true,"stream":false,"expires":12.5,"params":{"K":"v"}})", req,
      err))
      << err;
  EXPECT_EQ(req.op, JobRequest::Op::kSubmit);
  EXPECT_EQ(req.id, "s1");
  EXPECT_EQ(req.job, "hello");
  EXPECT_FALSE(req.adhoc);
  EXPECT_TRUE(req.durable);
  EXPECT_FALSE(req.stream);
  EXPECT_TRUE(req.has_expires);
  EXPECT_EQ(req.expires, 12.5);
  EXPECT_EQ(req.params.at("K"), "v");
  ASSERT_TRUE(parse_job_request(R"({"op":"submit","id":"s2","argv":["/bin/echo","x"]})", req, err)) << err;
  EXPECT_TRUE(req.adhoc);
  EXPECT_EQ(req.argv, (std::vector<std::string>{"/bin/echo", "x"}));
  EXPECT_TRUE(req.stream);
  EXPECT_FALSE(req.durable);
  ASSERT_TRUE(parse_job_request(R"({"op":"cancel","id":"s2"})", req, err)) << err;
  EXPECT_EQ(req.op, JobRequest::Op::kCancel);
}

// Issue 13's reproducers and their relatives: an error, never an exception.
TEST(JobRequest, WrongTypesAreErrors) {
  EXPECT_EQ(request_error(R"({"op":"submit","id":8})"), R"(malformed job request: "id" must be a string)");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p1","job":"hello","stream":"yes"})"),
            R"(malformed job request: "stream" must be true or false)");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p2","job":"hello","durable":1})"),
            R"(malformed job request: "durable" must be true or false)");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p3","job":["hello"]})"),
            R"(malformed job request: "job" must be a string)");
  EXPECT_EQ(request_error(R"({"op":"status","id":8})"), R"(malformed job request: "id" must be a string)");
  EXPECT_EQ(request_error(R"({"op":"cancel","id":8.5})"), R"(malformed job request: "id" must be a string)");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p4","expires":null})"),
            R"(malformed job request: "expires" must be a number)");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p5","expires":1e999})"), "malformed job request");
  EXPECT_EQ(request_error(R"({"id":"p6"})"), "malformed job request");
  EXPECT_EQ(request_error(""), "malformed job request");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"../x"})"), "invalid job id '../x'");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p7","params":[]})"), "params must be an object");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p8","params":{"BAD-NAME":"x"}})"),
            "invalid parameter name 'BAD-NAME' (letters, digits, _; not starting with a digit)");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"p9","params":{"K":"a\u0000b"}})"),
            "parameter K must be a string without NUL bytes");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"pa","argv":[null]})"), "argv must be an array of strings");
}

// Issue 24: fields are bounded before they reach a log, an audit line or a
// record (a 900 KiB job name cost 2.7 MB of log and audit per request), and
// the refusal quotes no more than a cut of them.
TEST(JobRequest, OversizedFieldsAreRefused) {
  std::string big(900 << 10, 'x');
  EXPECT_EQ(request_error(R"({"op":"submit","id":"q1","job":")" + big + "\"}"),
            "malformed job request: invalid job name '" + std::string(64, 'x') + "... (921600 bytes)'");
  EXPECT_EQ(request_error(R"({"op":"status","id":")" + big + "\"}"),
            "invalid job id '" + std::string(64, 'x') + "... (921600 bytes)'");
  std::string arg(kMaxArgBytes + 1, 'a');
  EXPECT_EQ(request_error(R"({"op":"submit","id":"q2","argv":["/bin/echo",")" + arg + "\"]}"),
            "an argv element of 131073 bytes (at most 131072)");
  EXPECT_EQ(request_error(R"({"op":"submit","id":"q3","params":{"K":")" + arg + "\"}}"),
            "parameter K has 131073 bytes (at most 131072)");
  json many = {{"op", "submit"}, {"id", "q4"}, {"argv", json::array()}};
  for (size_t i = 0; i <= kMaxArgs; ++i) many["argv"].push_back("a");
  EXPECT_EQ(request_error(many.dump()), "argv has 4097 elements (at most 4096)");
  // At the limits: accepted.
  many["argv"].erase(many["argv"].begin());
  many["argv"][0] = std::string(kMaxArgBytes, 'a');
  JobRequest req;
  std::string err;
  EXPECT_TRUE(parse_job_request(many.dump(), req, err)) << err;
}

json good_record() {
  return {{"id", "r1"},          {"job", "hello"},         {"from", "alpha"},  {"state", "exited"},
          {"pid", 42},           {"submitted", 1.7e9},     {"started", 1.7e9}, {"ended", 1.7e9 + 1},
          {"durable", false},    {"params", {{"K", "v"}}}, {"exit_code", 3},   {"stdout_tail", "out"},
          {"stderr_tail", "err"}};
}

std::string record_error(json j) {
  JobRecord r;
  std::string err;
  EXPECT_FALSE(JobRecord::from_json(j, r, err)) << j.dump();
  return err;
}

TEST(JobRecord, RoundTrips) {
  JobRecord r, back;
  std::string err;
  ASSERT_TRUE(JobRecord::from_json(good_record(), r, err)) << err;
  EXPECT_EQ(r.pid, 42);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.exit_status(), 3);
  ASSERT_TRUE(parse_job_record(r.to_json().dump(), back, err)) << err;
  EXPECT_EQ(back.to_json(), r.to_json());
  r.state = "failed";
  EXPECT_EQ(r.exit_status(), 127);
  r.jsd_failure = true;
  EXPECT_EQ(r.exit_status(), 255);
  ASSERT_TRUE(parse_job_record(r.to_json().dump(), back, err)) << err;
  EXPECT_EQ(back.exit_status(), 255);
}

// A record is range-checked: a number that does not fit is a refused
// record, not undefined behaviour (a float-to-int overflow).
TEST(JobRecord, RefusesWhatIsOutOfRange) {
  JobRecord r;
  std::string err;
  EXPECT_FALSE(parse_job_record(R"({"id":"r1","job":"j","from":"a","state":"exited","pid":7E51})", r, err));
  EXPECT_EQ(err, R"("pid" must be an integer from 0 to 2147483647)");
  auto with = [](const char* key, json v) {
    json j = good_record();
    j[key] = v;
    return j;
  };
  EXPECT_NE(record_error(with("pid", -1)), "");
  EXPECT_NE(record_error(with("pid", 4294967296LL)), "");
  EXPECT_NE(record_error(with("pid", 1.5)), "");
  EXPECT_NE(record_error(with("exit_code", 256)), "");
  EXPECT_NE(record_error(with("exit_code", -2)), "");
  EXPECT_NE(record_error(with("exit_code", 1e300)), "");
  EXPECT_NE(record_error(with("signal", 1000)), "");
  EXPECT_NE(record_error(with("ended", NAN)), "");
  EXPECT_NE(record_error(with("started", INFINITY)), "");
  EXPECT_NE(record_error(with("submitted", -1)), "");
  EXPECT_NE(record_error(with("state", "bogus")), "");
  EXPECT_NE(record_error(with("id", "../etc/passwd")), "");
  EXPECT_NE(record_error(with("id", 8)), "");
  EXPECT_NE(record_error(with("durable", "yes")), "");
  EXPECT_NE(record_error(with("params", {{"K", 1}})), "");
  EXPECT_NE(record_error(with("argv", {"a", 1})), "");
  EXPECT_NE(record_error(json::array()), "");
  EXPECT_FALSE(parse_job_record("{", r, err));
}

// A record that is not valid is left out of the store with one log line;
// the others load.
TEST(JobStore, RefusesABadRecordWithOneLogLine) {
  fake::Journal j;
  fake::Disk disk(j);
  disk.files["ok"] = R"({"id":"ok","job":"j","from":"a","state":"exited","exit_code":0})";
  disk.files["big"] = R"({"id":"big","job":"j","from":"a","state":"running","pid":7E51})";
  disk.files["other"] = R"({"id":"ok2","job":"j","from":"a","state":"exited"})";
  JobStore store(disk, 100, 1e9);
  std::string err;
  testing::internal::CaptureStderr();
  ASSERT_TRUE(store.open(err)) << err;
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(store.find("ok"), nullptr);
  EXPECT_EQ(store.find("big"), nullptr);
  EXPECT_EQ(store.find("ok2"), nullptr);
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 2) << log;
  EXPECT_NE(log.find("fake/big.json"), std::string::npos) << log;
}

// A record's versions reach the disk newest last: a background write that
// lands after a newer synced one is dropped, never overwrites it.
TEST(JobStore, AStaleWriteNeverOverwritesANewerOne) {
  fake::Journal j;
  fake::Disk disk(j);
  JobStore store(disk, 100, 1e9);
  std::string err;
  ASSERT_TRUE(store.open(err));
  JobRecord r;
  r.id = "v1";
  r.job = "j";
  r.from = "a";
  r.state = "running";
  store.add(r);
  disk.hold = true;
  ASSERT_TRUE(store.save(r, false, err));  // in the background, held
  r.state = "exited";
  ASSERT_TRUE(store.save(r, true, err));  // synced at once
  EXPECT_EQ(disk.state("v1"), "exited");
  disk.run_held();  // the older write lands last
  EXPECT_EQ(disk.state("v1"), "exited");
  EXPECT_EQ(j.find("write v1 running async"), -1);
}

// Pruning: finished records beyond keep, or too old, go; queued and running
// ones stay.
TEST(JobStore, PrunesFinishedRecordsOnly) {
  fake::Journal j;
  fake::Disk disk(j);
  JobStore store(disk, 1, 100);
  std::string err;
  ASSERT_TRUE(store.open(err));
  auto rec = [&](const std::string& id, const std::string& state, double ended) {
    JobRecord r;
    r.id = id;
    r.job = "j";
    r.from = "a";
    r.state = state;
    r.ended = ended;
    store.add(r);
    ASSERT_TRUE(store.save(r, false, err));
  };
  rec("old", "exited", 1000);
  rec("new", "exited", 1050);
  rec("q", "queued", 0);
  rec("r", "running", 0);
  EXPECT_EQ(store.prune(1060), 1u);
  EXPECT_EQ(store.find("old"), nullptr);
  EXPECT_EQ(disk.state("old"), "");
  EXPECT_EQ(store.prune(1200), 1u);  // "new" is now too old
  EXPECT_NE(store.find("q"), nullptr);
  EXPECT_NE(store.find("r"), nullptr);
}

TEST(Outbox, EntriesAreDecodedWithoutThrowing) {
  OutboxEntry e;
  std::string err;
  ASSERT_TRUE(parse_outbox_entry(R"({"id":"o1","to":"beta","object":"job","body":"{}"})", e, err)) << err;
  EXPECT_EQ(e.to, "beta");
  EXPECT_FALSE(parse_outbox_entry(R"({"id":8,"to":"beta","object":"job","body":"{}"})", e, err));
  EXPECT_EQ(err, R"("id" must be a string)");
  EXPECT_FALSE(parse_outbox_entry(R"({"id":"o1","to":"beta","object":"job"})", e, err));
  EXPECT_EQ(err, R"("body" is missing)");
  EXPECT_FALSE(parse_outbox_entry(R"({"id":"../o1","to":"beta","object":"job","body":""})", e, err));
  EXPECT_FALSE(parse_outbox_entry("[]", e, err));
  EXPECT_FALSE(parse_outbox_entry("", e, err));
}

// An entry whose file name is not its id could never be removed (remove()
// goes by id): it is left out instead of being delivered at every start.
TEST(Outbox, AnEntryFiledUnderAnotherNameIsNotLoaded) {
  jsd_test::TempDir tmp("outbox");
  std::string dir = tmp.path + "/outbox", err;
  Outbox box(dir);
  ASSERT_TRUE(box.open(err)) << err;
  ASSERT_TRUE(box.put({"o1", "beta", "job", "{}"}, err)) << err;
  ASSERT_TRUE(write_file_atomic(dir + "/o2.json", R"({"id":"o3","to":"beta","object":"job","body":"{}"})", false, err));
  auto loaded = box.load();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].id, "o1");
}

}  // namespace
