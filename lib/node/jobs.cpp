// The job runner's requests and records; job_run.cpp runs the jobs.
#include "jobs.h"

#include <algorithm>

#include "config.h"
#include "job_spawn.h"
#include "log.h"

namespace jsd {

using nlohmann::json;

namespace {
constexpr uint64_t kFlushMs = 20;
}  // namespace

struct JobRunner::Real {
  Real(uv_loop_t* loop, const Config& cfg) : clock(loop), processes(loop), disk(loop, cfg.state_dir + "/jobs") {}
  LoopClock clock;
  PosixJobProcesses processes;
  FileRecordDisk disk;
};

JobRunner::JobRunner(uv_loop_t* loop, const Config& cfg) : JobRunner(cfg, std::make_unique<Real>(loop, cfg)) {}

JobRunner::JobRunner(const Config& cfg, std::unique_ptr<Real> real)
    : JobRunner(cfg, real->clock, real->processes, real->disk) {
  real_ = std::move(real);
}

JobRunner::JobRunner(const Config& cfg, JobClock& clock, JobProcesses& processes, RecordDisk& disk)
    : cfg_(cfg),
      clock_(clock),
      store_(disk, cfg.job_records_keep, double(cfg.job_records_max_age_s)),
      flush_timer_(clock.timer()),
      runs_(cfg, clock, processes,
            {[this](const JobRecord& r) { save(r); }, [this] { ended(); }, backlog, on_pause, on_idle}) {}

JobRunner::~JobRunner() = default;

bool JobRunner::open(std::string& err) {
  if (!store_.open(err)) return false;
  double now = clock_.wall_time();
  // What a previous run of the node left: running jobs are gone with it;
  // queued ones (accepted, maybe durably) start now.
  std::vector<JobRecord*> requeue;
  for (auto& [id, r] : store_.all()) {
    if (r.state == "running") {
      r.state = "lost";
      r.error = "the node stopped while the job ran";
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
  return true;
}

void JobRunner::save(const JobRecord& r) {
  std::string err;
  if (r.durable || stopping_) {
    if (!store_.save(r, r.durable, err)) log_error("job record " + r.id + ": " + err);
    return;
  }
  // Others are written together a moment later: off the path of the
  // confirmations that were just sent, and one write for several changes.
  dirty_.insert(r.id);
  if (!flush_timer_->active()) flush_timer_->start(kFlushMs, [this] { flush_records(); });
}

void JobRunner::flush_records() {
  std::string err;
  for (auto& id : dirty_)
    if (JobRecord* rec = store_.find(id))
      if (!store_.save(*rec, false, err)) log_error("job record " + id + ": " + err);
  dirty_.clear();
}

// The pruning rule, applied in batches: a sort per finished job would be
// the most expensive thing about a short job.
void JobRunner::ended() {
  if (++finished_since_prune_ >= 64 || clock_.now_ms() - last_prune_ms_ > 60000) {
    store_.prune(clock_.wall_time());
    finished_since_prune_ = 0;
    last_prune_ms_ = clock_.now_ms();
  }
}

void JobRunner::handle(const std::string& from, const std::string& body, ReplyFn reply) {
  // Whatever goes wrong inside (it should not: every field is read with
  // typed accessors) is one error reply and one log line, never an abort
  // of the node; and a call already answered is not answered twice.
  auto answered = std::make_shared<bool>(false);
  ReplyFn once = [answered, reply = std::move(reply)](const std::string& object, std::string text, bool more) {
    if (*answered) return;
    if (!more) *answered = true;
    reply(object, std::move(text), more);
  };
  ReplyFn fallback = once;
  try {
    dispatch(from, body, once);
  } catch (const std::exception& e) {
    log_error("job request from " + from + " failed: " + printable(e.what()));
    if (!*answered) fallback("job", job_error_body(std::string("internal error: ") + e.what()), false);
  } catch (...) {
    log_error("job request from " + from + " failed: unknown exception");
    if (!*answered) fallback("job", job_error_body("internal error"), false);
  }
}

void JobRunner::dispatch(const std::string& from, const std::string& body, ReplyFn& reply) {
  JobRequest req;
  std::string err;
  if (!parse_job_request(body, req, err)) return reply("job", job_error_body(err), false);
  switch (req.op) {
    case JobRequest::Op::kSubmit:
      return submit(from, req, reply);
    case JobRequest::Op::kStatus:
      return status(from, req, reply);
    case JobRequest::Op::kCancel:
      return cancel(from, req, reply);
    case JobRequest::Op::kHistory:
      return history(from, req, reply);
    case JobRequest::Op::kJobs:
      return list_jobs(from, reply);
  }
}

// Writes the authorization decision (when there is an audit log); a job it
// could not write down is refused.
bool JobRunner::audited(const JobRecord& r, bool ok, std::string& why) {
  if (!audit) return ok;
  json entry = {{"what", r.job == kAdhoc ? "adhoc" : "job"},
                {"peer", r.from},
                {"id", r.id},
                {"verdict", ok ? "allowed" : "refused"}};
  if (r.job == kAdhoc)
    entry["argv"] = r.argv;
  else
    entry["job"] = r.job;
  if (!ok) entry["reason"] = why;
  if (!audit(entry, ok) && ok) {
    why = "cannot write the audit log on " + cfg_.node;
    return false;
  }
  return ok;
}

void JobRunner::submit(const std::string& from, JobRequest& req, ReplyFn& reply) {
  JobRecord r;
  r.from = from;
  r.submitted = clock_.wall_time();
  r.id = req.id;
  r.durable = req.durable;
  if (req.has_expires && r.submitted > req.expires) {
    log_info("submission " + r.id + " from " + from + " expired before it arrived; not run");
    return reply(
        "job",
        job_error_body("submission " + r.id + " expired before it reached " + cfg_.node + " (its submitter gave up)"),
        false);
  }
  r.argv = std::move(req.argv);
  r.job = req.adhoc ? kAdhoc : req.job;
  r.params = std::move(req.params);
  // At most once per id: a resubmission (a retry, a redelivery) gets the
  // record, not a second run.
  if (JobRecord* old = store_.find(r.id)) {
    log_info("job " + r.id + " from " + from + " already known (" + old->state + "); not run again");
    if (old->from != from)  // someone else's job: say no more than that
      return reply("job", job_error_body("job id " + r.id + " is already taken on " + cfg_.node), false);
    return reply("job", dump_json({{"type", "duplicate"}, {"record", old->to_json()}}), false);
  }
  auto run = std::make_unique<JobRuns::Run>();
  std::string why;
  bool ok = policy_.resolve(r, run->def, why);
  if (!audited(r, ok, why)) {
    log_warn("refused job '" + printable(r.job) + "' from " + from + ": " + why);
    return reply("job", job_error_body(why), false);
  }
  run->rec = &store_.add(r);
  // The id is remembered in memory at once; on disk, a job that starts now
  // is written once it runs. A durable submission is on disk (fsync'd)
  // before it is acknowledged; one that has to wait is written a moment
  // later with the other records.
  if (r.durable || !runs_.starts_now(r.job, run->def.max_parallel)) save(*run->rec);
  if (!req.stream) {
    reply("job", dump_json({{"type", "accepted"}, {"record", run->rec->to_json()}}), false);
  } else {
    run->reply = std::move(reply);
  }
  runs_.enqueue(std::move(run));
}

// The record of the job a request names, if the requester may see it (the
// node that submitted it, or this node itself); otherwise answers and null.
JobRecord* JobRunner::own_record(const std::string& from, const JobRequest& req, ReplyFn& reply) {
  JobRecord* r = store_.find(req.id);
  if (!r)
    reply("job", job_error_body("no job '" + req.id + "' on " + cfg_.node), false);
  else if (r->from != from && from != cfg_.node)
    reply("job", job_error_body("job " + req.id + " was not submitted by " + from), false);
  else
    return r;
  return nullptr;
}

void JobRunner::status(const std::string& from, const JobRequest& req, ReplyFn& reply) {
  if (JobRecord* r = own_record(from, req, reply))
    reply("job", dump_json({{"type", "status"}, {"record", r->to_json()}}), false);
}

void JobRunner::cancel(const std::string& from, const JobRequest& req, ReplyFn& reply) {
  JobRecord* r = own_record(from, req, reply);
  if (!r) return;
  runs_.cancel(*r, from);
  reply("job", dump_json({{"type", "cancel"}, {"record", r->to_json()}}), false);
}

// The caller's own records, newest first (nobody learns of another node's
// jobs): what --history prints. Without the output tails: a list, not dumps.
void JobRunner::history(const std::string& from, const JobRequest& req, ReplyFn& reply) {
  std::vector<const JobRecord*> mine;
  for (auto& [id, r] : store_.all())
    if (r.from == from) mine.push_back(&r);
  std::sort(mine.begin(), mine.end(), [](const JobRecord* a, const JobRecord* b) {
    return a->submitted != b->submitted ? a->submitted > b->submitted : a->id > b->id;
  });
  if (mine.size() > size_t(req.limit)) mine.resize(size_t(req.limit));
  json records = json::array();
  for (const JobRecord* r : mine) {
    json j = r->to_json();
    j.erase("stdout_tail");
    j.erase("stderr_tail");
    j.erase("params");
    records.push_back(std::move(j));
  }
  reply("job", dump_json({{"type", "history"}, {"node", cfg_.node}, {"records", records}}), false);
}

// The jobs the caller may run here, by the same rule as a submission.
void JobRunner::list_jobs(const std::string& from, ReplyFn& reply) {
  json jobs = json::array();
  for (auto& [name, def] : cfg_.jobs) {
    if (def.has_allow && !policy_.allowed(from, def.allow, true)) continue;
    json j = {{"name", name}, {"timeout_s", def.timeout_s}, {"max_parallel", def.max_parallel}};
    if (!def.description.empty()) j["description"] = def.description;
    jobs.push_back(std::move(j));
  }
  std::vector<std::string> adhoc;
  for (auto& [n, on] : cfg_.allow_adhoc) adhoc.push_back(n);
  bool adhoc_ok = policy_.allowed(from, adhoc, false);
  reply("job", dump_json({{"type", "jobs"}, {"node", cfg_.node}, {"jobs", jobs}, {"adhoc", adhoc_ok}}), false);
}

void JobRunner::stop_all() {
  stopping_ = true;
  flush_timer_->stop();
  flush_records();
  runs_.stop_all();
}

void JobRunner::kill_all() { runs_.kill_all(); }

json JobRunner::status_json() const { return runs_.status_json(); }

}  // namespace jsd
