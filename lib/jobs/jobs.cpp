// The job runner's requests and records; job_run.cpp runs the jobs.
#include "jobs.h"

#include <algorithm>
#include <utility>

#include "config.h"
#include "job_spawn.h"
#include "log.h"

namespace jsd {

using nlohmann::json;

namespace {
constexpr uint64_t kFlushMs = 20;
constexpr uint64_t kRetryMs = 1000;
}  // namespace

// Every start of a job passes here first (JobRuns starts the processes
// through it): who may run it is decided again, at the moment it would
// start, under the configuration of that moment. A job accepted from a
// peer whose key was revoked since, which is no peer any more, or which
// its allow list no longer admits, does not start: it fails as jsd's
// refusal (255: it did not run), recorded, audited and told its submitter.
class JobRunner::StartGate : public JobProcesses {
 public:
  StartGate(JobRunner& runner, JobProcesses& procs) : runner_(runner), procs_(procs) {}
  std::unique_ptr<JobProcess> start(const JobSpawn& spec, StartError& err) override {
    std::string why;
    if (JobRecord* r = runner_.store_.find(spec.id); r && !runner_.may_start(*r, why)) {
      err.what = "the job: " + why + " (checked again at its start)";
      err.command = false;
      return nullptr;
    }
    return procs_.start(spec, err);
  }
  void signal_group(int pid, int sig) override { procs_.signal_group(pid, sig); }
  std::vector<std::pair<std::string, std::string>> started_before() override { return procs_.started_before(); }
  std::unique_ptr<JobProcess> adopt(const std::string& id, JobEnd& end) override { return procs_.adopt(id, end); }
  KeptOutput kept_output(const std::string& id, int fd, uint64_t from) override {
    return procs_.kept_output(id, fd, from);
  }

 private:
  JobRunner& runner_;
  JobProcesses& procs_;
};

struct JobRunner::Real {
  Real(uv_loop_t* loop, const Config& cfg, const std::string& libexec)
      : clock(loop),
        processes(loop, cfg.state_dir + "/jobs", libexec + "/jsd-job", cfg.job_output_keep,
                  uint64_t(cfg.job_supervisor_slow_s) * 1000),
        disk(loop, cfg.state_dir + "/jobs") {}
  LoopClock clock;
  PosixJobProcesses processes;
  FileRecordDisk disk;
};

JobRunner::JobRunner(uv_loop_t* loop, const Config& cfg, const std::string& libexec)
    : JobRunner(cfg, std::make_unique<Real>(loop, cfg, libexec)) {}

JobRunner::JobRunner(const Config& cfg, std::unique_ptr<Real> real)
    : JobRunner(cfg, real->clock, real->processes, real->disk) {
  real_ = std::move(real);
}

JobRunner::JobRunner(const Config& cfg, JobClock& clock, JobProcesses& processes, RecordDisk& disk)
    : cfg_(cfg),
      clock_(clock),
      procs_(processes),
      store_(disk, cfg.job_records_keep, double(cfg.job_records_max_age_s)),
      flush_timer_(clock.timer()),
      retry_timer_(clock.timer()),
      gate_(std::make_unique<StartGate>(*this, processes)),
      runs_(cfg, clock, *gate_,
            {[this](const JobRecord& r) { save(r); }, [this] { ended(); }, backlog, on_pause, on_idle}) {
  store_.on_write_failed = [this] { write_failed(); };
}

JobRunner::~JobRunner() = default;

bool JobRunner::open(std::string& err) {
  if (!store_.open(err)) return false;
  // What a previous run of the node left is settled once the supervisor it
  // may have left has said which jobs it runs (when_ready): it first takes
  // the starts the dead listener had sent it, so every job it started then
  // has its directory. A slow (stopped) supervisor holds up those jobs and
  // the requests naming them, never the node.
  for (auto& [id, r] : store_.all())
    if (!r.finished()) unadopted_.insert(id);
  for (auto& [id, text] : procs_.started_before()) unadopted_.insert(id);
  recovered_ = false;
  procs_.when_ready([this] { recover(); });
  return true;
}

bool JobRunner::save(const JobRecord& r) {
  if (on_save) on_save(r);
  std::string err;
  // (A write that fails is logged by the store and tried again later.)
  if (r.durable || stopping_) return store_.save(r, r.durable, err);
  // Others are written together a moment later: off the path of the
  // confirmations that were just sent, and one write for several changes.
  dirty_.insert(r.id);
  if (!flush_timer_->active()) flush_timer_->start(kFlushMs, [this] { flush_records(); });
  return true;
}

// While some record could not be written (a full disk), it is tried again
// every second: what is in memory is the truth, and it should reach the
// disk as soon as there is room, not only at the next change or never.
void JobRunner::write_failed() {
  if (stopping_ || retry_timer_->active()) return;
  retry_timer_->start(kRetryMs, [this] {
    if (!store_.failed().empty()) store_.retry_failed();
  });
}

void JobRunner::flush_records() {
  std::string err;
  for (auto& id : dirty_)
    if (JobRecord* rec = store_.find(id)) store_.save(*rec, false, err);
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

void JobRunner::handle(const std::string& from, const std::string& body, ReplyFn reply,
                       const std::vector<std::string>& via) {
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
    dispatch(from, body, once, via);
  } catch (const std::exception& e) {
    log_error("job request from " + from + " failed: " + printable(e.what()));
    if (!*answered) fallback("job", job_error_body(std::string("internal error: ") + e.what()), false);
  } catch (...) {
    log_error("job request from " + from + " failed: unknown exception");
    if (!*answered) fallback("job", job_error_body("internal error"), false);
  }
}

void JobRunner::dispatch(const std::string& from, const std::string& body, ReplyFn& reply,
                         const std::vector<std::string>& via) {
  JobRequest req;
  std::string err;
  if (!parse_job_request(body, req, err)) return reply("job", job_error_body(err), false);
  // Its job is not adopted yet, or (a submission) its id may be among the
  // starts the previous run sent the supervisor that has not listed its
  // jobs yet: this waits for that (a hung supervisor would make a start
  // wait anyway), so that a re-sent submission finds its job, not "started
  // here before".
  if (unadopted_.count(req.id) || (!recovered_ && req.op == JobRequest::Op::kSubmit)) {
    log_info("job " + req.id + ": a request waits for the job supervisor to list its jobs");
    held_.push_back([this, from, body, reply, via] { handle(from, body, reply, via); });
    return;
  }
  switch (req.op) {
    case JobRequest::Op::kSubmit:
      return submit(from, req, reply, via);
    case JobRequest::Op::kStatus:
      return status(from, req, reply);
    case JobRequest::Op::kCancel:
      return cancel(from, req, reply);
    case JobRequest::Op::kAttach:
      if (JobRecord* r = own_record(from, req, reply)) attach(*r, req, reply);
      return;
    case JobRequest::Op::kHistory:
      return history(from, req, reply);
    case JobRequest::Op::kJobs:
      return list_jobs(from, reply);
  }
}

// Writes the authorization decision (when there is an audit log); a job it
// could not write down is refused.
bool JobRunner::audited(const JobRecord& r, bool ok, std::string& why, bool at_start) {
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
  if (at_start) entry["at"] = "start";
  if (!r.via.empty()) entry["via"] = r.via;
  if (!audit(entry, ok) && ok) {
    why = "cannot write the audit log on " + cfg_.node;
    return false;
  }
  return ok;
}

bool JobRunner::may_start(const JobRecord& r, std::string& why) {
  bool known = true;
  bool ok = r.from == cfg_.node || !peer_ok || peer_ok(r.from, r.from_key, known, why);
  JobDef def;
  if (ok && known) ok = policy_.resolve(r, def, why);
  if (ok) return true;
  log_warn("job " + r.id + " (" + printable(r.job) + ") from " + r.from + " refused at its start: " + why);
  audited(r, false, why, true);
  return false;
}

void JobRunner::input(const std::string& from, std::string_view body) {
  InputChunk c;
  std::string err;
  if (!decode_input_chunk(body, c, err)) return log_warn("stdin from " + from + ": " + err + "; dropped");
  runs_.input(from, c);
}

void JobRunner::submit(const std::string& from, JobRequest& req, ReplyFn& reply, const std::vector<std::string>& via) {
  JobRecord r;
  r.from = from;
  r.via = via;
  if (key_of && from != cfg_.node) r.from_key = key_of(from);
  r.accepted = clock_.wall_time();
  // The submitter's time, unless it says nothing or its clock is ahead of
  // ours: a record never claims a submission after it arrived.
  r.submitted = req.submitted > 0 && req.submitted < r.accepted ? req.submitted : r.accepted;
  r.id = req.id;
  r.durable = req.durable;
  if (req.has_expires && r.accepted > req.expires) {
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
    if (req.resume && old->from == from)
      log_info("job " + r.id + ": its submitter on " + from + " joins it again (" + old->state + ")");
    else
      log_info("job " + r.id + " from " + from + " already known (" + old->state + "); not run again");
    if (old->from != from)  // someone else's job: say no more than that
      return reply("job", job_error_body("job id " + r.id + " is already taken on " + cfg_.node), false);
    if (req.resume && req.stream) return attach(*old, req, reply);
    // The same id while it runs (a retry from cron): the retry attaches,
    // and gets the output from now on and the job's end.
    if (!old->finished() && req.stream) {
      req.stdout_from = old->stdout_bytes;
      req.stderr_from = old->stderr_bytes;
      return attach(*old, req, reply);
    }
    return reply("job", dump_json({{"type", "duplicate"}, {"record", old->to_json()}}), false);
  }
  auto run = std::make_unique<JobRuns::Run>();
  std::string why;
  bool ok = policy_.resolve(r, run->def, why);
  r.input = req.input;
  if (ok && r.input && !run->def.reads_stdin) {
    ok = false;
    why = "job '" + r.job + "' on " + cfg_.node + " takes no input (its definition does not say \"stdin\": true)";
  }
  if (!audited(r, ok, why)) {
    log_warn("refused job '" + printable(r.job) + "' from " + from + ": " + why);
    return reply("job", job_error_body(why), false);
  }
  run->rec = &store_.add(r);
  // The id is remembered in memory at once; on disk, a job that starts now
  // is written once it runs. A durable submission is on disk (fsync'd)
  // before it is acknowledged, or refused (its sender keeps the refusal;
  // the id stays free); one that has to wait is written a moment later
  // with the other records.
  if (r.durable && !save(*run->rec)) {
    store_.forget(r.id);
    why = "cannot accept job " + r.id + " on " + cfg_.node +
          ": its record cannot be written (the state directory is full or read-only)";
    log_warn("refused job '" + printable(r.job) + "' from " + from + ": " + why);
    return reply("job", job_error_body(why), false);
  }
  if (!r.durable && !runs_.starts_now(r.job, run->def.max_parallel)) save(*run->rec);
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
    reply("job", job_error_body("no submission with id '" + req.id + "' on " + cfg_.node), false);
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

// Joins a job: what is kept of its output from the offsets asked for (its
// directory; the record's tails once that is gone), then, while it runs,
// its output as it comes and its end. The "attached" header says from
// which offsets the output follows (later ones than asked: dropped).
void JobRunner::attach(JobRecord& r, const JobRequest& req, ReplyFn& reply) {
  auto kept = [&](int fd, uint64_t from) {
    uint64_t total = fd == 1 ? r.stdout_bytes : r.stderr_bytes;
    KeptOutput k = procs_.kept_output(r.id, fd, from);
    if (k.end < total && r.finished()) {  // its directory is gone: the tail stands in
      const std::string& tail = fd == 1 ? r.stdout_tail : r.stderr_tail;
      k.end = total;
      k.first = std::max(from, total - std::min<uint64_t>(total, tail.size()));
      k.data = tail.substr(tail.size() - size_t(total - k.first));
    }
    // Live output from the offset the runner has reached; the disk may be
    // ahead of it (the supervisor writes before it forwards).
    if (k.first > total) k.first = total;
    if (k.first + k.data.size() > total) k.data.resize(size_t(total - k.first));
    return k;
  };
  KeptOutput out = kept(1, req.stdout_from), err = kept(2, req.stderr_from);
  bool live = !r.finished();
  reply("job",
        dump_json({{"type", "attached"},
                   {"id", r.id},
                   {"state", r.state},
                   {"stdout_first", out.first},
                   {"stderr_first", err.first},
                   {"resumed", req.resume}}),
        true);
  if (!out.data.empty()) reply("job.stdout", std::move(out.data), true);
  if (!err.data.empty()) reply("job.stderr", std::move(err.data), true);
  if (live && runs_.watch_run(r, reply)) return;
  reply("job", dump_json({{"type", "ended"}, {"record", r.to_json()}}), false);
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
  retry_timer_->stop();
  flush_records();
  runs_.stop_all();
}

void JobRunner::kill_all() { runs_.kill_all(); }

json JobRunner::status_json() const {
  json j = runs_.status_json();
  SupervisorState s = procs_.supervisor_state();
  j["supervisor"] = {{"pid", s.pid}, {"waiting", s.waiting}, {"waiting_ms", s.waiting_ms}, {"slow", s.slow}};
  return j;
}

}  // namespace jsd
