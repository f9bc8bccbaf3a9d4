// jsd-submit: run a named job (or, where allowed, an ad-hoc command) on a
// node; print its start, stream its output, exit with its exit status.
#pragma once

#include <uv.h>

#include <map>
#include <string>
#include <vector>

#include "config.h"

namespace jsd {

struct SubmitOptions {
  Config cfg;
  std::string node;
  std::string job;                // a job name from the node's config, or
  std::vector<std::string> argv;  // an ad-hoc command (jsd-submit NODE -- CMD...)
  std::map<std::string, std::string> params;
  std::string id;        // submission id; generated when empty
  double timeout_s = 0;  // 0: wait as long as the job runs
  bool no_wait = false, json = false, quiet = false, detach_on_interrupt = false;
  bool input = false;  // -i: stream our stdin to the job's (stdin_feed.h)
  // history: the caller's last `count` jobs on node; jobs: what it may run.
  enum class Mode { submit, status, cancel, attach, history, jobs } mode = Mode::submit;
  long count = 20;  // --history -n
  // node may be a target set (NODE,NODE..., @GROUP, @all; targets.h): the
  // job runs on each (fanout.h), at most fanout (and batch) at a time;
  // max_failures stops starting more; gather prints outputs like dshbak -c.
  size_t fanout = 64, batch = 0, max_failures = 0;
  bool gather = false;
};

// Exit codes: the job's exit status (128+N for signal N, 127 if it could not
// start); 255 when jsd itself failed. --status/--cancel: 0, or 255.
// --attach: the job's exit status, or 255.
int run_submit(const SubmitOptions& o);

// One NODE (not a target set) on loop, through channel (the seam: a test's
// fake; null for the real control connection), which the caller's loop runs.
class ControlChannel;
int run_submit_on(uv_loop_t* loop, const SubmitOptions& o, ControlChannel* channel);

// A new random submission id (16 hex digits).
std::string new_job_id();

}  // namespace jsd
