// The node's counters and gauges in the Prometheus text exposition format
// (version 0.0.4), for `jsd-listener --metrics` and the metrics_file that
// node_exporter's textfile collector reads. Every name starts with jsd_;
// the list, with what each means, is in jsd-listener(8), METRICS.
//
// Counters count from the listener's start (Prometheus handles the reset
// at a restart); gauges are read when the text is made. What is counted as
// it happens comes in through job_record() and the handshake and audit
// counts the node port and audit log keep; the rest the listener hands to
// render() as a snapshot.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "uvx.h"

namespace jsd {

struct JobRecord;

// A handshake refusal's reason (free text naming peers and keys) as one of
// a fixed set of label values, so that a flood of made-up names cannot
// make the metrics grow: unknown_key, revoked, wrong_name, certificate,
// bad_address, busy, psk, handshake_failed, protocol, other.
const char* handshake_refusal_kind(const std::string& reason);
// Every label value a refused handshake can have, in the order printed.
const std::vector<std::string>& handshake_refusal_kinds();

// What the listener knows at the moment of a scrape.
struct MetricsSnapshot {
  std::string node, version;
  double started = 0;  // the listener's start, Unix time
  // Link objects as --status --json has them (peer, direction, state,
  // queued, queued_bytes, restarts).
  nlohmann::json links = nlohmann::json::array();
  // Handshakes on the node port by outcome: "allowed" or a refusal kind.
  std::map<std::string, uint64_t> handshakes;
  // Audit decisions: (what, verdict) -> count.
  std::map<std::pair<std::string, std::string>, uint64_t> audit;
  size_t jobs_running = 0, jobs_queued = 0;
  // Requests the job supervisor has not answered, and whether it is slow.
  size_t supervisor_waiting = 0;
  bool supervisor_slow = false;
  long fds_open = -1, fds_limit = -1;
  // Relayed requests this node sent to gateways, and how many of them went
  // in bundles (and in how many bundles: relay.h).
  uint64_t relayed_sent = 0, relay_bundles = 0, relayed_bundled = 0;
};

class NodeMetrics {
 public:
  // Upper bounds of the job duration histogram's buckets, in seconds.
  static const std::vector<double>& duration_buckets();
  // A job record as the job runner saves it: a first sight of a job that
  // runs counts it started; its end counts it ended, with its duration.
  void job_record(const JobRecord& r);
  std::string render(const MetricsSnapshot& s) const;

  uint64_t started() const { return started_; }

 private:
  uint64_t started_ = 0;
  std::map<std::pair<std::string, std::string>, uint64_t> ended_;  // (state, exit class)
  std::vector<uint64_t> buckets_ = std::vector<uint64_t>(duration_buckets().size(), 0);
  uint64_t durations_ = 0;
  double duration_sum_ = 0;
  std::set<std::string> running_;  // counted as started, not yet ended
  // Ids counted as ended lately: a finished record saved again is not a
  // second end. Bounded: the oldest go first.
  std::set<std::string> ended_ids_;
  std::deque<std::string> ended_order_;
};

// The exit class of a finished job: ok (exit status 0), failed (its
// command exited non-zero), signal (a signal ended it), not_executable
// (127: its command could not be executed), jsd (jsd could not start it,
// or its outcome is unknown), none (it never ran: cancelled while queued).
const char* job_exit_class(const JobRecord& r);

// Descriptors this process has open (-1: unknown) and may have.
long open_descriptors();
long descriptor_limit();

// metrics_file for node_exporter's textfile collector: written whole
// (temporary file and rename, so a scrape never reads half of it), 0644 so
// that node_exporter's user reads it, every metrics_interval_s.
class MetricsFile {
 public:
  MetricsFile(uv_loop_t* loop, std::function<std::string()> render) : loop_(loop), render_(std::move(render)) {}
  // Writes path now and every interval_s; "" writes none. A file written
  // before under another path (a reload moved or ended it) is removed.
  void start(const std::string& path, int interval_s);
  // Stops, and removes the file written last.
  void stop();

 private:
  void write();
  uv_loop_t* loop_;
  std::function<std::string()> render_;
  std::unique_ptr<Timer> timer_;
  std::string path_, written_;  // written_: the file this listener wrote last
  bool failed_ = false;
};

}  // namespace jsd
