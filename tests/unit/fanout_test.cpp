// The fan-out (lib/tools/fanout.h) through its control channel seam: a fake
// listener answers each node's job call from a script, and the set's exit
// status, its summary and its --json lines are checked, as they follow
// from each node's record (job_wire.h) and from jsd's own failures.
#include "fanout.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "control_fakes.h"
#include "event.h"
#include "exit_codes.h"
#include "uvx.h"

using namespace jsd;
using nlohmann::json;

namespace {

// A listener that answers every job call at once (on the next loop turn):
// by the script of the node it is for.
using Script = std::function<std::vector<json>(const std::string& id)>;
fake::ControlListener::Script listener(std::map<std::string, Script> scripts) {
  return [scripts = std::move(scripts)](const ControlMsg& m) {
    std::vector<std::string> out;
    if (m.type != ControlType::send) return out;
    auto body = json::parse(m.ev.body);
    if (body.value("op", "") != "submit") return out;
    auto it = scripts.find(m.ev.to);
    EXPECT_NE(it, scripts.end()) << m.ev.to;
    if (it == scripts.end()) return out;
    for (auto& answer : it->second(body["id"])) out.push_back(fake::ControlListener::reply(m.ev.id, answer));
    return out;
  };
}

json record(const std::string& id, json fields) {
  json r = {{"id", id}, {"job", "j"}, {"from", "alpha"}, {"started", 1.0}, {"ended", 2.0}};
  r.update(fields);
  return {{"type", "ended"}, {"record", r}};
}

Script exits(int code) {
  return [code](const std::string& id) {
    return std::vector<json>{{{"type", "started"}, {"pid", 42}},
                             {{"stdout", "hello\n"}},
                             record(id, {{"state", "exited"}, {"exit_code", code}, {"exit_status", code}})};
  };
}
Script ends_in(const std::string& state) {
  return [state](const std::string& id) {
    return std::vector<json>{{{"type", "started"}, {"pid", 42}},
                             record(id, {{"state", state}, {"error", "its supervisor ended"}, {"exit_status", 255}})};
  };
}
Script refuses() {
  return [](const std::string&) { return std::vector<json>{{{"error", "no job 'j' on that node"}}}; };
}

struct Outcome {
  int code = -1;
  std::string out, err;
  std::vector<json> lines;  // --json
  json by_node(const std::string& node) const {
    for (auto& l : lines)
      if (l.value("node", "") == node) return l;
    return nullptr;
  }
};

Outcome run_set(std::map<std::string, Script> scripts, bool as_json = false) {
  SubmitOptions o;
  o.job = "j";
  o.id = "run";
  o.json = as_json;
  std::vector<TargetEntry> targets;
  for (auto& [node, script] : scripts) targets.push_back({node, ""});
  o.node = "set";
  Outcome out;
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  out.code = with_loop(
      [&](uv_loop_t* loop) {
        fake::ControlListener fake(loop, listener(scripts));
        int code = run_fanout_on(loop, o, targets, &fake);
        EXPECT_TRUE(fake.closed);
        return code;
      },
      kExitJsdFailure);
  out.out = testing::internal::GetCapturedStdout();
  out.err = testing::internal::GetCapturedStderr();
  if (as_json) {
    size_t at = 0;
    for (size_t nl; (nl = out.out.find('\n', at)) != std::string::npos; at = nl + 1) {
      auto j = json::parse(out.out.substr(at, nl - at), nullptr, false);
      if (j.is_object()) out.lines.push_back(j);
    }
  }
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST(Fanout, AllZeroIsZero) {
  Outcome r = run_set({{"beta", exits(0)}, {"gamma", exits(0)}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(has_line(r.out, "beta: hello")) << r.out;
  EXPECT_TRUE(has_line(r.err, "jsd-submit: 2 nodes: 2 ok, 0 failed")) << r.err;
}

TEST(Fanout, TheHighestJobStatus) {
  Outcome r = run_set({{"beta", exits(3)}, {"gamma", exits(5)}, {"delta", exits(0)}});
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_TRUE(has_line(r.err, "jsd-submit: 3 nodes: 1 ok, 2 failed")) << r.err;
  EXPECT_TRUE(has_line(r.err, "jsd-submit:   beta: exit status 3")) << r.err;
}

TEST(Fanout, JsdFailureForOneNodeIs255) {
  Outcome r = run_set({{"beta", exits(3)}, {"gamma", refuses()}}, true);
  EXPECT_EQ(r.code, 255) << r.err;
  EXPECT_EQ(r.by_node("gamma").value("error_kind", ""), "refused");
  EXPECT_EQ(r.by_node("gamma").value("exit_status", 0), 255);
  EXPECT_EQ(r.by_node("beta").value("exit_status", 0), 3);
}

// jsd's verdict apart from the job's status (issue 22).
TEST(Fanout, ALostJobIs254NotTheJsdFailure255) {
  Outcome r = run_set({{"beta", exits(3)}, {"gamma", refuses()}, {"delta", ends_in("lost")}}, true);
  EXPECT_EQ(r.code, 254) << r.err;
  json d = r.by_node("delta");
  EXPECT_EQ(d.value("exit_status", 0), 254);
  EXPECT_EQ(d.value("exit_from", ""), "jsd");
  EXPECT_EQ(d.value("error_kind", ""), "lost");
  EXPECT_EQ(d.value("state", ""), "lost");
  // One line names the job, even with --json.
  EXPECT_TRUE(has_line(r.err, "jsd-submit: error: delta: job run.delta was lost: its supervisor ended")) << r.err;
}

TEST(Fanout, AnUnknownRecordIs254AndSaysSoOnce) {
  Outcome r = run_set({{"beta", exits(0)}, {"gamma", ends_in("unknown")}});
  EXPECT_EQ(r.code, 254) << r.err;
  const std::string line =
      "jsd-submit: error: gamma: the outcome of job run.gamma cannot be known: its supervisor ended";
  EXPECT_TRUE(has_line(r.err, line)) << r.err;
  EXPECT_EQ(r.err.find(line), r.err.rfind(line)) << r.err;
  EXPECT_TRUE(has_line(r.err, "jsd-submit: 2 nodes: 1 ok, 0 failed, 1 unknown")) << r.err;
  EXPECT_TRUE(has_line(r.err,
                       "jsd-submit:   gamma: unknown: the outcome of job run.gamma cannot be known: its "
                       "supervisor ended"))
      << r.err;
}

TEST(Fanout, AJobsOwn255IsToldFromJsds) {
  Outcome r = run_set({{"beta", exits(255)}, {"gamma", refuses()}}, true);
  EXPECT_EQ(r.code, 255) << r.err;
  EXPECT_EQ(r.by_node("beta").value("exit_from", ""), "job");
  EXPECT_EQ(r.by_node("gamma").value("exit_from", ""), "jsd");
  Outcome t = run_set({{"beta", exits(255)}, {"gamma", exits(254)}});
  EXPECT_EQ(t.code, 255) << t.err;  // both the jobs' own: the highest
  EXPECT_TRUE(has_line(t.err, "jsd-submit:   beta: exit status 255 (the job's own)")) << t.err;
  EXPECT_TRUE(has_line(t.err, "jsd-submit:   gamma: exit status 254 (the job's own)")) << t.err;
  EXPECT_TRUE(has_line(t.err, "jsd-submit: 2 nodes: 0 ok, 2 failed")) << t.err;
}

TEST(Fanout, ExitStatusCombination) {
  using S = NodeStatus;
  const ExitFrom job = ExitFrom::job, jsd = ExitFrom::jsd;
  EXPECT_EQ(fanout_exit_status({}), 0);
  EXPECT_EQ(fanout_exit_status({S{0, job}, S{0, job}}), 0);
  EXPECT_EQ(fanout_exit_status({S{0, job}, S{3, job}, S{1, job}}), 3);
  EXPECT_EQ(fanout_exit_status({S{3, job}, S{255, jsd}}), 255);
  EXPECT_EQ(fanout_exit_status({S{137, job}, S{127, job}}), 137);
  // An unknowable outcome anywhere outranks 255: not run, somewhere, is
  // not the whole story when elsewhere it may have run.
  EXPECT_EQ(fanout_exit_status({S{255, jsd}, S{254, jsd}, S{0, job}}), 254);
  EXPECT_EQ(fanout_exit_status({S{255, job}, S{254, jsd}}), 254);
  // A job's own 254 is no "cannot know".
  EXPECT_EQ(fanout_exit_status({S{254, job}, S{255, jsd}}), 255);
  EXPECT_EQ(fanout_exit_status({S{254, job}, S{3, job}}), 254);
  EXPECT_EQ(status_summary(S{3, job}), "exit status 3");
  EXPECT_EQ(status_summary(S{255, jsd}), "exit status 255 (jsd's: the job did not run)");
  EXPECT_EQ(status_summary(S{254, jsd}), "exit status 254 (jsd's: the outcome cannot be known)");
  EXPECT_EQ(status_summary(S{255, job}), "exit status 255 (the job's own)");
}
