// Inside the job runner: one job on its way through the queue and its run.
// Only jobs.cpp and job_run.cpp include this.
#pragma once

#include <memory>
#include <string>

#include "jobs.h"

namespace jsd {

std::string job_error_body(const std::string& why);

struct JobRunner::Run {
  JobRecord* rec = nullptr;  // owned by the store; never pruned while queued/running
  JobDef def;
  ReplyFn reply;  // null when nobody is listening (durable, restarted)
  std::unique_ptr<JobProcess> proc;
  int pid = 0;  // while it runs
  bool out_open = false, err_open = false;
  std::unique_ptr<JobTimer> timeout, grace, drain, persist, resume;
  bool paused = false;
  bool exited = false, timed_out = false, cancelled = false;
  int64_t status = 0;
  int sig = 0;
};

}  // namespace jsd
