// The node's metrics: refusal reasons into a fixed set of labels, job
// records into counters and the duration histogram, the text's shape.
#include "metrics.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "job_record.h"

namespace jsd {
namespace {

TEST(Metrics, RefusalKindsAreAFixedSetWhateverThePeerClaims) {
  EXPECT_STREQ(handshake_refusal_kind("key not known for delta (not in peers)"), "unknown_key");
  EXPECT_STREQ(handshake_refusal_kind("key not known for delta and no certificate presented"), "unknown_key");
  EXPECT_STREQ(handshake_refusal_kind("key of gamma is revoked"), "revoked");
  EXPECT_STREQ(handshake_refusal_kind("key of gamma is revoked (b2:aa)"), "revoked");
  EXPECT_STREQ(handshake_refusal_kind("key belongs to alpha, not beta"), "wrong_name");
  EXPECT_STREQ(handshake_refusal_kind("it claims this node's own name"), "wrong_name");
  EXPECT_STREQ(handshake_refusal_kind("it wants node 'certificate revoked', this is beta"), "wrong_name");
  EXPECT_STREQ(handshake_refusal_kind("certificate for gamma expired on 2026-01-01"), "certificate");
  EXPECT_STREQ(handshake_refusal_kind("bad certificate: truncated"), "certificate");
  EXPECT_STREQ(handshake_refusal_kind("too many handshakes in progress for alpha"), "busy");
  EXPECT_STREQ(handshake_refusal_kind("missing psk"), "psk");
  EXPECT_STREQ(handshake_refusal_kind("handshake failed"), "handshake_failed");
  EXPECT_STREQ(handshake_refusal_kind("anything else"), "other");
  // A name with "revoked" in it is still an unknown key.
  EXPECT_STREQ(handshake_refusal_kind("key not known for revoked-1"), "unknown_key");
  for (const char* r : {"key not known for x", "key of x is revoked", "it claims this node's own name",
                        "bad address 'x'", "unexpected psk", "unknown handshake flags", "zzz"}) {
    std::string k = handshake_refusal_kind(r);
    auto& all = handshake_refusal_kinds();
    EXPECT_NE(std::find(all.begin(), all.end(), k), all.end()) << k;
  }
}

JobRecord rec(const std::string& id, const std::string& state, double started, double ended, int code = -1,
              int sig = 0) {
  JobRecord r;
  r.id = id;
  r.job = "j";
  r.from = "alpha";
  r.state = state;
  r.started = started;
  r.ended = ended;
  r.exit_code = code;
  r.signal = sig;
  r.pid = started > 0 ? 42 : 0;
  return r;
}

TEST(Metrics, JobsCountedOnceEachFromTheirRecords) {
  NodeMetrics m;
  m.job_record(rec("a", "queued", 0, 0));
  EXPECT_EQ(m.started(), 0u);
  m.job_record(rec("a", "running", 10, 0));
  m.job_record(rec("a", "running", 10, 0));  // saved again while it runs
  EXPECT_EQ(m.started(), 1u);
  m.job_record(rec("a", "exited", 10, 10.2, 0));
  m.job_record(rec("a", "exited", 10, 10.2, 0));  // a finished record saved again
  // A short job whose "running" record was never saved on its own.
  m.job_record(rec("b", "exited", 20, 23, 3));
  m.job_record(rec("c", "killed", 30, 100, -1, 9));
  // Cancelled while queued: ended, never started, no duration.
  m.job_record(rec("d", "cancelled", 0, 40));
  JobRecord f = rec("e", "failed", 50, 50);
  f.jsd_failure = true;
  m.job_record(f);
  EXPECT_EQ(m.started(), 3u);
  std::string t = m.render(MetricsSnapshot{});
  EXPECT_NE(t.find("jsd_jobs_started_total 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_jobs_ended_total{state=\"exited\",exit_class=\"ok\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_jobs_ended_total{state=\"exited\",exit_class=\"failed\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_jobs_ended_total{state=\"killed\",exit_class=\"signal\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_jobs_ended_total{state=\"cancelled\",exit_class=\"none\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_jobs_ended_total{state=\"failed\",exit_class=\"jsd\"} 1\n"), std::string::npos) << t;
  // Durations 0.2, 3 and 70 s.
  EXPECT_NE(t.find("jsd_job_duration_seconds_bucket{le=\"0.1\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_job_duration_seconds_bucket{le=\"0.25\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_job_duration_seconds_bucket{le=\"5\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_job_duration_seconds_bucket{le=\"60\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_job_duration_seconds_bucket{le=\"300\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_job_duration_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_job_duration_seconds_count 3\n"), std::string::npos) << t;
}

TEST(Metrics, TextHasEveryFamilyOnceAndEscapesLabels) {
  NodeMetrics m;
  MetricsSnapshot s;
  s.node = "be\"ta";
  s.version = "0.1.0";
  s.links = nlohmann::json::array({{{"peer", "alpha"},
                                    {"direction", "out"},
                                    {"state", "up"},
                                    {"queued", 2},
                                    {"queued_bytes", 300},
                                    {"restarts", 1}},
                                   {{"peer", "alpha"}, {"direction", "in"}, {"state", "waiting"}, {"queued", 0}}});
  s.handshakes = {{"allowed", 4}, {"unknown_key", 2}};
  s.audit = {{{"link", "refused"}, 2}};
  s.fds_open = 12;
  s.fds_limit = 1024;
  s.relayed_sent = 9;
  s.relay_bundles = 2;
  s.relayed_bundled = 7;
  std::string t = m.render(s);
  EXPECT_NE(t.find("jsd_node_info{node=\"be\\\"ta\",version=\"0.1.0\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("jsd_link_state{peer=\"alpha\",direction=\"out\",state=\"up\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_link_state{peer=\"alpha\",direction=\"out\",state=\"down\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_link_up{peer=\"alpha\",direction=\"in\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_queued_events{peer=\"alpha\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_queued_bytes{peer=\"alpha\"} 300\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_handshakes_allowed_total 4\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_handshakes_refused_total{reason=\"unknown_key\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_handshakes_refused_total{reason=\"timeout\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_audit_decisions_total{what=\"link\",verdict=\"refused\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_audit_decisions_total{what=\"job\",verdict=\"allowed\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_open_descriptors 12\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_relayed_requests_sent_total 9\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_relay_bundles_sent_total 2\n"), std::string::npos);
  EXPECT_NE(t.find("jsd_relayed_requests_bundled_total 7\n"), std::string::npos);
  // One HELP and one TYPE per family, each family's samples together.
  size_t helps = 0, types = 0;
  for (size_t at = 0; (at = t.find("# HELP ", at)) != std::string::npos; ++at) ++helps;
  for (size_t at = 0; (at = t.find("# TYPE ", at)) != std::string::npos; ++at) ++types;
  EXPECT_EQ(helps, types);
  EXPECT_GE(helps, 17u);
}

TEST(Metrics, DescriptorsAreCounted) {
  long before = open_descriptors();
  ASSERT_GT(before, 2);
  FILE* f = fopen("/dev/null", "r");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(open_descriptors(), before + 1);
  fclose(f);
  EXPECT_GT(descriptor_limit(), 0);
}

}  // namespace
}  // namespace jsd
