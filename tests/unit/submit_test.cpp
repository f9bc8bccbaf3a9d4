// jsd-submit on one node (lib/tools/submit.h) through its control channel
// seam: a fake listener answers the submission from a script. Replies of
// the wrong shape (what a hostile peer may send) give one error line and a
// defined exit status, never an exception or an abort.
#include "submit.h"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "control_fakes.h"
#include "event.h"
#include "exit_codes.h"
#include "uvx.h"

using namespace jsd;
using nlohmann::json;

namespace {

// Answers the first job call with the script's replies; a withdraw with
// `withdraw_verdict`, a cancel call with a record of a job that had started
// (so that nothing claims it did not run).
fake::ControlListener::Script listener(std::vector<json> replies, WithdrawVerdict withdraw_verdict) {
  auto answered = std::make_shared<bool>(false);
  return [replies = std::move(replies), withdraw_verdict, answered](const ControlMsg& m) {
    std::vector<std::string> out;
    if (m.type == ControlType::withdraw) {
      ControlMsg r;
      r.type = ControlType::withdrawn;
      r.id = m.id;
      r.verdict = withdraw_verdict;
      out.push_back(encode_control(r));
    } else if (m.type == ControlType::send) {
      json body = json::parse(m.ev.body);
      if (body["op"] != "cancel" && !*answered) {
        *answered = true;
        // {"lose": true}: the listener goes (killed), the stream closes.
        for (auto& a : replies)
          out.push_back(a.contains("lose") ? fake::ControlListener::kLose : fake::ControlListener::reply(m.ev.id, a));
      } else if (body["op"] == "cancel") {
        out.push_back(fake::ControlListener::reply(m.ev.id, {{"type", "cancel"},
                                                             {"record",
                                                              {{"id", body["id"]},
                                                               {"job", "j"},
                                                               {"from", "alpha"},
                                                               {"state", "running"},
                                                               {"started", 1.0},
                                                               {"pid", 42}}}}));
      }
    }
    return out;
  };
}

struct Outcome {
  int code = -1;
  std::string out, err;
};

Outcome submit(std::vector<json> replies, bool no_wait = false, WithdrawVerdict v = WithdrawVerdict::unknown,
               SubmitOptions::Mode mode = SubmitOptions::Mode::submit) {
  SubmitOptions o;
  o.cfg.node = "alpha";
  o.cfg.peers["beta"] = Endpoint{"127.0.0.3", 4455};
  o.node = "beta";
  o.job = "j";
  o.id = "run1";
  o.no_wait = no_wait;
  o.mode = mode;
  Outcome out;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  out.code = with_loop(
      [&](uv_loop_t* loop) {
        fake::ControlListener fake(loop, listener(std::move(replies), v));
        return run_submit_on(loop, o, &fake);
      },
      kExitJsdFailure);
  out.out = testing::internal::GetCapturedStdout();
  out.err = testing::internal::GetCapturedStderr();
  return out;
}

// One error line on standard error (after the notes of what went well,
// such as the start), naming what was wrong, and nothing of nlohmann's
// exception text.
void expect_one_error_line(const Outcome& o, const std::string& names) {
  std::vector<std::string> errors;
  size_t at = 0;
  for (size_t nl; (nl = o.err.find('\n', at)) != std::string::npos; at = nl + 1)
    if (o.err.compare(at, 19, "jsd-submit: error: ") == 0) errors.push_back(o.err.substr(at, nl - at));
  ASSERT_EQ(errors.size(), 1u) << o.err;
  EXPECT_EQ(errors[0].rfind("jsd-submit: error: malformed re", 0), 0u) << o.err;
  EXPECT_NE(errors[0].find(names), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("json.exception"), std::string::npos) << o.err;
  EXPECT_EQ(at, o.err.size()) << "a last line without a newline: " << o.err;
}

json started() { return {{"type", "started"}, {"started", 1.0}, {"pid", 42}}; }

}  // namespace

TEST(SubmitReplies, AWellFormedRunExitsWithTheJobsStatus) {
  auto o = submit({started(),
                   {{"stdout", "hello\n"}},
                   {{"type", "ended"},
                    {"record",
                     {{"id", "run1"},
                      {"job", "j"},
                      {"from", "alpha"},
                      {"state", "exited"},
                      {"exit_code", 3},
                      {"started", 1.0},
                      {"ended", 2.0}}}}});
  EXPECT_EQ(o.code, 3) << o.err;
  EXPECT_EQ(o.out, "hello\n");
}

// Before the start: the request may have reached the node (the listener
// cannot withdraw it): 254, "cannot know".
TEST(SubmitReplies, ATypeOfTheWrongTypeIsOneErrorAnd254) {
  auto o = submit({{{"type", 7}}});
  EXPECT_EQ(o.code, kExitOutcomeUnknown);
  expect_one_error_line(o, "\"type\" must be a string");
}

TEST(SubmitReplies, AWithdrawnRequestAfterAMalformedReplyIs255) {
  auto o = submit({{{"type", "queued"}, {"position", "first"}}}, false, WithdrawVerdict::not_sent);
  EXPECT_EQ(o.code, kExitJsdFailure);
  expect_one_error_line(o, "\"position\" must be an integer");
  EXPECT_NE(o.err.find("the job was not run"), std::string::npos) << o.err;
}

TEST(SubmitReplies, AStartWithAWrongPidIsOneErrorAnd254) {
  auto o = submit({{{"type", "started"}, {"pid", "x"}}});
  EXPECT_EQ(o.code, kExitOutcomeUnknown);
  expect_one_error_line(o, "\"pid\" must be an integer");
}

TEST(SubmitReplies, AStartTimeOfTheWrongTypeIsOneError) {
  auto o = submit({{{"type", "started"}, {"started", "now"}, {"pid", 42}}});
  EXPECT_EQ(o.code, kExitOutcomeUnknown);
  expect_one_error_line(o, "\"started\" must be");
}

TEST(SubmitReplies, AnAttachHeaderWithNegativeOffsetsIsOneError) {
  auto o = submit({started(), {{"type", "attached"}, {"stdout_first", -5}, {"state", "running"}}});
  EXPECT_EQ(o.code, kExitOutcomeUnknown);
  expect_one_error_line(o, "\"stdout_first\" must be");
}

TEST(SubmitReplies, AnEndRecordOfTheWrongShapeIsOneError) {
  auto o = submit({started(), {{"type", "ended"}, {"record", {{"state", "exited"}, {"exit_code", "zero"}}}}});
  EXPECT_EQ(o.code, kExitOutcomeUnknown);
  expect_one_error_line(o, "\"exit_code\"");
}

TEST(SubmitReplies, ANoWaitAnswerOfTheWrongShapeIsOneError) {
  auto o = submit({{{"type", "queued_locally"}, {"id", "run1"}, {"waiting", "yes"}}}, true);
  expect_one_error_line(o, "\"waiting\" must be true or false");
  // On this node's disk or not: the submission may run. Never 255.
  EXPECT_EQ(o.code, kExitOutcomeUnknown);
  auto r = submit({{{"type", "accepted"}, {"record", {{"state", 5}}}}}, true);
  expect_one_error_line(r, "\"state\" must be a string");
  EXPECT_EQ(r.code, kExitOutcomeUnknown);
}

TEST(SubmitReplies, AListingWithAWrongMemberPrintsItAsAbsent) {
  auto o = submit({{{"type", "jobs"}, {"node", "beta"}, {"jobs", json::array()}, {"adhoc", "yes"}}}, false,
                  WithdrawVerdict::unknown, SubmitOptions::Mode::jobs);
  EXPECT_EQ(o.code, kExitOk) << o.err;
  EXPECT_EQ(o.out.find("ad-hoc"), std::string::npos) << o.out;
}

static json ended_with(int code) {
  return {{"type", "ended"},
          {"record",
           {{"id", "run1"},
            {"job", "j"},
            {"from", "alpha"},
            {"state", "exited"},
            {"exit_code", code},
            {"started", 1.0},
            {"ended", 2.0}}}};
}

// Issue 19: a retry by --id that joins the running job starts at the
// output's present end by design: the bytes before it were kept, and no
// line says otherwise; the job's end is the retry's exit status.
TEST(SubmitReplies, ARetryJoiningARunningJobLosesNothing) {
  auto o = submit({{{"type", "attached"}, {"id", "run1"}, {"state", "running"}, {"stdout_first", 6}},
                   {{"stdout", "second\n"}},
                   ended_with(4)});
  EXPECT_EQ(o.code, 4) << o.err;
  EXPECT_EQ(o.out, "second\n");
  EXPECT_EQ(o.err.find("not kept"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("attached to job run1 (running)"), std::string::npos) << o.err;
}

// A resumption asked for the output from what was printed (0 here): what
// the node no longer keeps is said, once per stream.
TEST(SubmitReplies, AResumptionSaysWhatWasNotKept) {
  auto o = submit({{{"type", "attached"}, {"id", "run1"}, {"state", "exited"}, {"stdout_first", 6}, {"resumed", true}},
                   {{"stdout", "second\n"}},
                   ended_with(4)});
  EXPECT_EQ(o.code, 4) << o.err;
  EXPECT_NE(o.err.find("6 bytes of job run1's stdout were not kept"), std::string::npos) << o.err;
}

// Issue 19: --no-wait, and the local listener is lost (SIGKILL) after the
// submission went to it and before it answered: it may have written the
// submission to its outbox, and then runs it after its restart. 254 with
// one line naming the id, never 255. Once it said "queued_locally", the
// submission is on its disk: the id, and 0.
TEST(SubmitNoWait, ALostListenerBeforeItsAnswerIs254NamingTheId) {
  auto o = submit({{{"lose", true}}}, true);
  EXPECT_EQ(o.code, kExitOutcomeUnknown) << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  EXPECT_EQ(o.err.rfind("jsd-submit: error: lost contact with the local jsd-listener; job run1 may have been queued "
                        "on this node and may run: jsd-submit --status run1 beta",
                        0),
            0u)
      << o.err;
  EXPECT_EQ(o.out, "");
}

TEST(SubmitNoWait, ALostListenerAfterItKeptTheSubmissionIsQueued) {
  auto o = submit({{{"type", "queued_locally"}, {"id", "run1"}, {"waiting", true}}, {{"lose", true}}}, true);
  EXPECT_EQ(o.code, kExitOk) << o.err;
  EXPECT_EQ(o.out, "run1\n");
  EXPECT_NE(o.err.find("job run1 stays queued on this node"), std::string::npos) << o.err;
}
