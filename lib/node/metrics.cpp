#include "metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "files.h"
#include "job_record.h"
#include "link_state.h"
#include "log.h"

namespace jsd {

namespace {

constexpr size_t kEndedIdsKept = 4096;

// A label value escaped as the exposition format wants it: backslash,
// double quote and newline.
std::string esc(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"')
      o += '\\', o += c;
    else if (c == '\n')
      o += "\\n";
    else
      o += c;
  }
  return o;
}

// Numbers as Go's strconv would print them, which is what the parsers
// expect: integers without a fraction, +Inf spelt so.
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    snprintf(buf, sizeof buf, "%.0f", v);
  else
    snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

class Out {
 public:
  void family(const char* name, const char* type, const char* help) {
    t_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels, double v) {
    t_ += name;
    if (!labels.empty()) {
      t_ += '{';
      for (size_t i = 0; i < labels.size(); ++i)
        t_ += (i ? "," : "") + labels[i].first + "=\"" + esc(labels[i].second) + "\"";
      t_ += '}';
    }
    t_ += " " + num(v) + "\n";
  }
  std::string& text() { return t_; }

 private:
  std::string t_;
};

std::string str(const nlohmann::json& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}
double number(const nlohmann::json& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->is_number() ? it->get<double>() : 0;
}

}  // namespace

const char* handshake_refusal_kind(const std::string& reason) {
  // By how the reason begins (trust.cpp, identity.cpp, node_port.cpp,
  // handshake.cpp): what follows names peers, which the peer chose.
  auto starts = [&](const char* s) { return reason.rfind(s, 0) == 0; };
  if (starts("key not known for ")) return "unknown_key";
  if (starts("key of ")) return "revoked";
  if (starts("key belongs to ") || starts("invalid node name") || starts("it claims this node's own name") ||
      starts("it wants node "))
    return "wrong_name";
  if (starts("bad certificate") || starts("the certificate is for") || starts("certificate for ")) return "certificate";
  if (starts("bad address ")) return "bad_address";
  if (starts("too many handshakes in progress")) return "busy";
  // Refused before the peer's key is known (what handshake.cpp tells it).
  if (reason == "missing psk" || reason == "unexpected psk") return "psk";
  if (reason == "handshake failed") return "handshake_failed";
  if (reason == "unknown handshake flags") return "protocol";
  return "other";
}

const std::vector<std::string>& handshake_refusal_kinds() {
  // Decided with the peer's key known (handshake_refusal_kind), then what
  // the node port refuses or loses before that (node_port.cpp).
  static const std::vector<std::string> k = {
      "unknown_key", "revoked",          "wrong_name", "certificate", "bad_address", "busy",
      "psk",         "handshake_failed", "protocol",   "malformed",   "timeout",     "closed",
      "limit",       "no_queue_server",  "other"};
  return k;
}

const char* job_exit_class(const JobRecord& r) {
  if (r.state == "cancelled" && r.started == 0) return "none";
  if (r.state == "failed") return r.jsd_failure ? "jsd" : "not_executable";
  if (r.state == "lost") return "jsd";
  if (r.signal > 0) return "signal";
  if (r.exit_code == 0) return "ok";
  if (r.exit_code > 0) return "failed";
  return "jsd";
}

const std::vector<double>& NodeMetrics::duration_buckets() {
  static const std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,     2.5,
                                        5,     10,   30,    60,   300, 900,  3600, 14400, 86400};
  return b;
}

void NodeMetrics::job_record(const JobRecord& r) {
  // A job that got a process: running now, or finished after a start (a
  // short job's "running" record may never be saved on its own).
  bool ran = r.state == "running" || (r.finished() && r.state != "failed" && r.started > 0);
  if (ran && !running_.count(r.id) && !ended_ids_.count(r.id)) {
    running_.insert(r.id);
    ++started_;
  }
  if (!r.finished() || ended_ids_.count(r.id)) return;
  running_.erase(r.id);
  ended_ids_.insert(r.id);
  ended_order_.push_back(r.id);
  if (ended_order_.size() > kEndedIdsKept) {
    ended_ids_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
  ++ended_[{r.state, job_exit_class(r)}];
  if (!ran || r.ended < r.started) return;
  double d = r.ended - r.started;
  auto& b = duration_buckets();
  for (size_t i = 0; i < b.size(); ++i)
    if (d <= b[i]) ++buckets_[i];
  ++durations_;
  duration_sum_ += d;
}

std::string NodeMetrics::render(const MetricsSnapshot& s) const {
  Out o;
  o.family("jsd_node_info", "gauge", "The node's name and jsd version (always 1).");
  o.sample("jsd_node_info", {{"node", s.node}, {"version", s.version}}, 1);
  o.family("jsd_listener_start_time_seconds", "gauge", "When the listener started, in seconds since the epoch.");
  o.sample("jsd_listener_start_time_seconds", {}, s.started);

  // Links: one series per state and link end, 1 for the state it is in.
  o.family("jsd_link_state", "gauge",
           "The state of each link end (direction out: this node's jsd-client, in: the peer's jsd-queue-server here); "
           "1 for the state it is in, 0 for the others.");
  for (auto& l : s.links) {
    std::string peer = str(l, "peer"), dir = str(l, "direction"), state = str(l, "state");
    for (uint8_t b = 1; b <= kLastLinkState; ++b) {
      LinkState st;
      if (!link_state_from(b, st)) continue;
      std::string name = link_state_name(st);
      o.sample("jsd_link_state", {{"peer", peer}, {"direction", dir}, {"state", name}}, name == state ? 1 : 0);
    }
  }
  o.family("jsd_link_up", "gauge", "1 if the link end is up (events flow), else 0.");
  for (auto& l : s.links)
    o.sample("jsd_link_up", {{"peer", str(l, "peer")}, {"direction", str(l, "direction")}},
             str(l, "state") == "up" ? 1 : 0);
  o.family("jsd_link_restarts_total", "counter", "Times this node's jsd-client towards the peer was restarted.");
  for (auto& l : s.links)
    if (str(l, "direction") == "out")
      o.sample("jsd_link_restarts_total", {{"peer", str(l, "peer")}}, number(l, "restarts"));
  o.family("jsd_queued_events", "gauge", "Events queued for the peer and not yet acknowledged by it.");
  for (auto& l : s.links)
    if (str(l, "direction") == "out") o.sample("jsd_queued_events", {{"peer", str(l, "peer")}}, number(l, "queued"));
  o.family("jsd_queued_bytes", "gauge", "Bytes of the events queued for the peer and not yet acknowledged by it.");
  for (auto& l : s.links)
    if (str(l, "direction") == "out")
      o.sample("jsd_queued_bytes", {{"peer", str(l, "peer")}}, number(l, "queued_bytes"));

  // Handshakes on the node port.
  auto count = [&](const std::string& k) {
    auto it = s.handshakes.find(k);
    return it == s.handshakes.end() ? 0.0 : double(it->second);
  };
  o.family("jsd_handshakes_allowed_total", "counter", "Handshakes on the node port that made a link.");
  o.sample("jsd_handshakes_allowed_total", {}, count("allowed"));
  o.family("jsd_handshakes_refused_total", "counter",
           "Connections on the node port that made no link, by reason (see jsd-listener(8), METRICS).");
  for (auto& k : handshake_refusal_kinds()) o.sample("jsd_handshakes_refused_total", {{"reason", k}}, count(k));

  o.family("jsd_audit_decisions_total", "counter",
           "Authorization decisions audited (refused links one by one, though audit-refused.log aggregates them).");
  auto audit = s.audit;
  for (const char* what : {"link", "job", "adhoc"})
    for (const char* verdict : {"allowed", "refused"}) audit[{what, verdict}] += 0;
  for (auto& [k, n] : audit)
    o.sample("jsd_audit_decisions_total", {{"what", k.first}, {"verdict", k.second}}, double(n));

  // Jobs.
  o.family("jsd_jobs_started_total", "counter", "Jobs this node started (each got a process).");
  o.sample("jsd_jobs_started_total", {}, double(started_));
  o.family("jsd_jobs_ended_total", "counter", "Jobs that ended on this node, by final state and exit class.");
  for (auto& [k, n] : ended_)
    o.sample("jsd_jobs_ended_total", {{"state", k.first}, {"exit_class", k.second}}, double(n));
  o.family("jsd_job_duration_seconds", "histogram", "How long the jobs that ran took, from start to end.");
  auto& b = duration_buckets();
  for (size_t i = 0; i < b.size(); ++i)
    o.sample("jsd_job_duration_seconds_bucket", {{"le", num(b[i])}}, double(buckets_[i]));
  o.sample("jsd_job_duration_seconds_bucket", {{"le", "+Inf"}}, double(durations_));
  o.sample("jsd_job_duration_seconds_sum", {}, duration_sum_);
  o.sample("jsd_job_duration_seconds_count", {}, double(durations_));
  o.family("jsd_jobs_running", "gauge", "Jobs running now under the node's job supervisor (jsd-job).");
  o.sample("jsd_jobs_running", {}, double(s.jobs_running));
  o.family("jsd_jobs_queued", "gauge", "Jobs accepted and waiting for a slot (max_parallel).");
  o.sample("jsd_jobs_queued", {}, double(s.jobs_queued));
  o.family("jsd_job_supervisor_waiting", "gauge",
           "Requests (job starts) the node's job supervisor has not answered yet.");
  o.sample("jsd_job_supervisor_waiting", {}, double(s.supervisor_waiting));
  o.family("jsd_job_supervisor_slow", "gauge",
           "1 while the job supervisor has left a request unanswered for job_supervisor_slow_s or longer.");
  o.sample("jsd_job_supervisor_slow", {}, s.supervisor_slow ? 1 : 0);

  o.family("jsd_relayed_requests_sent_total", "counter",
           "Requests this node sent to nodes it reaches through gateways (via), sealed for their targets.");
  o.sample("jsd_relayed_requests_sent_total", {}, double(s.relayed_sent));
  o.family("jsd_relay_bundles_sent_total", "counter",
           "Bundles of such requests (a fan-out's requests through one gateway, as one event).");
  o.sample("jsd_relay_bundles_sent_total", {}, double(s.relay_bundles));
  o.family("jsd_relayed_requests_bundled_total", "counter", "Relayed requests that went in a bundle.");
  o.sample("jsd_relayed_requests_bundled_total", {}, double(s.relayed_bundled));

  if (s.fds_open >= 0) {
    o.family("jsd_open_descriptors", "gauge", "File descriptors the listener has open.");
    o.sample("jsd_open_descriptors", {}, double(s.fds_open));
  }
  if (s.fds_limit >= 0) {
    o.family("jsd_max_descriptors", "gauge", "The listener's descriptor limit (RLIMIT_NOFILE).");
    o.sample("jsd_max_descriptors", {}, double(s.fds_limit));
  }
  return std::move(o.text());
}

long open_descriptors() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  long n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

long descriptor_limit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return -1;
  return long(rl.rlim_cur);
}

void MetricsFile::write() {
  std::string err;
  if (write_file_atomic(path_, render_(), false, err, ".tmp", 0644)) {
    written_ = path_;
  } else if (!failed_) {
    log_warn("metrics_file: " + err + " (said once until it works again)");
  }
  failed_ = !err.empty();
}

void MetricsFile::start(const std::string& path, int interval_s) {
  if (!written_.empty() && written_ != path) {
    unlink(written_.c_str());  // a reload moved or ended it
    written_.clear();
  }
  timer_.reset();
  path_ = path;
  if (path.empty()) return;
  timer_ = std::make_unique<Timer>(loop_);
  uint64_t ms = uint64_t(interval_s) * 1000;
  write();
  timer_->start(
      ms, [this] { write(); }, ms);
}

void MetricsFile::stop() {
  timer_.reset();
  if (!written_.empty()) unlink(written_.c_str());
  written_.clear();
}

}  // namespace jsd
