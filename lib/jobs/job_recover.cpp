// What a previous run of the node left, settled at start-up once its job
// supervisor has listed its jobs (JobRunner::open, when_ready): jobs it
// started are adopted or given their ends, queued ones queued again.
#include <utility>

#include "jobs.h"
#include "log.h"

namespace jsd {

void JobRunner::recover() {
  double now = clock_.wall_time();
  // A job it started has a directory (job_files.h): it is never started
  // again. Its supervisor may still run it (re-adopted, its deadline kept)
  // or may have written how it ended.
  std::set<std::string> started;
  for (auto& [id, text] : procs_.started_before()) {
    started.insert(id);
    adopt(id, text, now);
  }
  // Queued ones (accepted, maybe durably, never started) start now.
  std::vector<JobRecord*> requeue;
  for (auto& [id, r] : store_.all()) {
    if (started.count(id)) continue;
    if (r.state == "running") {  // a record from before job directories
      r.state = "unknown";
      r.error = "the node stopped while the job ran";
      r.ended = now;
      save(r);
    } else if (r.state == "queued" && r.input) {
      // Its input was this node's to take once it started, from a
      // submitter whose stream ended with the listener: never run it on
      // none.
      r.state = "cancelled";
      r.error = "its input was cut: the node restarted before the job started";
      r.ended = now;
      save(r);
    } else if (r.state == "queued") {
      requeue.push_back(&r);
    }
  }
  size_t pruned = store_.prune(now);
  if (pruned) log_info("pruned " + std::to_string(pruned) + " old job records");
  for (JobRecord* r : requeue) {
    auto run = std::make_unique<JobRuns::Run>();
    run->rec = r;
    std::string why;
    // Who may run it was decided (and audited) when it was accepted; the
    // groups a certificate gave its submitter are not known again until it
    // links, so that decision stands. A job no longer defined is jsd's
    // refusal, as it would have been at submission.
    if (!policy_.resolve(*r, run->def, why, false)) {
      r->state = "failed";
      r->error = why;
      r->jsd_failure = true;
      r->ended = now;
      save(*r);
      continue;
    }
    log_info("job " + r->id + " (" + r->job + " from " + r->from + ") was queued before the restart; queuing it again");
    runs_.enqueue(std::move(run));
  }
  unadopted_.clear();
  recovered_ = true;
  for (auto& fn : std::exchange(held_, {})) fn();
}

// A job started before this run of the node: re-adopted, or its end
// recorded from its directory.
void JobRunner::adopt(const std::string& id, const std::string& started_text, double now) {
  JobRecord* r = store_.find(id);
  if (!r) {
    // Its record was still to be written when the node stopped: the one
    // kept beside the job stands in.
    JobRecord kept;
    std::string why;
    if (!parse_job_record(started_text, kept, why) || kept.id != id) {
      kept = JobRecord{};
      kept.id = id;
      kept.job = "?";
      kept.from = "?";
      kept.state = "running";
      kept.submitted = kept.started = now;
    }
    r = &store_.add(kept);
  }
  if (r->finished()) return;
  JobEnd end;
  auto proc = procs_.adopt(id, end);
  if (proc) {
    auto run = std::make_unique<JobRuns::Run>();
    run->rec = r;
    std::string why;
    if (!policy_.resolve(*r, run->def, why, false)) run->def = JobDef{};
    // The tails of its output so far come from its directory.
    for (int fd : {1, 2}) {
      uint64_t at = proc->first_offset(fd);
      KeptOutput k = procs_.kept_output(id, fd, at > kTailBytes ? at - kTailBytes : 0);
      if (k.first <= at && k.first + k.data.size() > at) k.data.resize(size_t(at - k.first));
      (fd == 1 ? r->stdout_tail : r->stderr_tail) = k.data;
    }
    run->proc = std::move(proc);
    return runs_.adopt(std::move(run));
  }
  if (r->started == 0) r->started = now;
  r->pid = 0;
  if (!end.known || (end.error.empty() && end.exit_code < 0 && !end.signal)) {
    r->state = "unknown";
    // Its supervisor writes its end (job.json) as the job ends; without it, the
    // supervisor stopped first, or the state directory could not take it.
    r->error =
        "how the job ended was not written down (its supervisor stopped, or the state directory was full): unknown";
    r->ended = std::max(r->started, end.ended > 0 ? end.ended : now);
  } else if (!end.error.empty()) {
    r->state = "failed";
    r->error = start_error(end.error);
    r->jsd_failure = !end.command;
    r->ended = end.ended;
  } else {
    r->ended = end.ended;
    r->exit_code = end.signal ? -1 : end.exit_code;
    r->signal = end.signal;
    r->state = end.signal ? (r->deadline > 0 && end.ended >= r->deadline ? "timeout" : "killed") : "exited";
    r->stdout_bytes = end.out_bytes;
    r->stderr_bytes = end.err_bytes;
    r->stdout_dropped = end.out_dropped;
    r->stderr_dropped = end.err_dropped;
    r->stdout_tail = procs_.kept_output(id, 1, end.out_bytes > kTailBytes ? end.out_bytes - kTailBytes : 0).data;
    r->stderr_tail = procs_.kept_output(id, 2, end.err_bytes > kTailBytes ? end.err_bytes - kTailBytes : 0).data;
  }
  log_info("job " + r->id + " (" + r->job + ") ended while the node was down: " + r->state + ", exit status " +
           std::to_string(r->exit_status()));
  save(*r);
}

}  // namespace jsd
