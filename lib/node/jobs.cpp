#include "jobs.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "event.h"
#include "log.h"

extern char** environ;

namespace jsd {

using nlohmann::json;

namespace {

constexpr const char* kAdhoc = "(adhoc)";
constexpr uint64_t kPersistRunningMs = 100;
constexpr uint64_t kFlushMs = 20;

std::string error_body(const std::string& why) { return dump_json({{"type", "error"}, {"error", why}}); }

bool valid_param_name(const std::string& k) {
  if (k.empty() || k.size() > 64) return false;
  if (!(isalpha(static_cast<unsigned char>(k[0])) || k[0] == '_')) return false;
  for (char c : k)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

}  // namespace

struct JobRunner::Run {
  JobRecord* rec = nullptr;  // owned by the store; never pruned while queued/running
  JobDef def;
  ReplyFn reply;  // null when nobody is listening (durable, restarted)
  int pid = 0;    // while it runs
  Stream* out = nullptr;
  Stream* err = nullptr;
  std::unique_ptr<Timer> timeout, grace, drain, persist, resume;
  bool paused = false;
  bool exited = false, timed_out = false, cancelled = false;
  int64_t status = 0;
  int sig = 0;
};

JobRunner::JobRunner(uv_loop_t* loop, const Config& cfg)
    : loop_(loop),
      cfg_(cfg),
      store_(cfg.state_dir + "/jobs", cfg.job_records_keep, double(cfg.job_records_max_age_s)),
      reaper_(loop) {}

JobRunner::~JobRunner() {
  for (auto& [p, r] : runs_) {
    if (r->out) r->out->discard();
    if (r->err) r->err->discard();
  }
}

bool JobRunner::open(std::string& err) {
  if (!store_.open(err)) return false;
  store_.set_loop(loop_);
  double now = wall_time();
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
    auto run = std::make_unique<Run>();
    run->rec = r;
    std::string why;
    // Who may run it was decided (and audited) when it was accepted; the
    // groups a certificate gave its submitter are not known again until it
    // links, so that decision stands.
    if (!resolve(*r, run->def, why, false)) {
      r->state = "failed";
      r->error = why;
      r->ended = now;
      save(*r);
      continue;
    }
    log_info("job " + r->id + " (" + r->job + " from " + r->from + ") was queued before the restart; queuing it again");
    enqueue(std::move(run));
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
  if (!flush_timer_.active()) flush_timer_.start(kFlushMs, [this] { flush_records(); });
}

void JobRunner::flush_records() {
  std::string err;
  for (auto& id : dirty_)
    if (JobRecord* rec = store_.find(id))
      if (!store_.save(*rec, false, err)) log_error("job record " + id + ": " + err);
  dirty_.clear();
}

namespace {
// A request's optional fields: each of the type it must have, or absent.
std::string typed_fields_error(const json& req) {
  static const std::pair<const char*, json::value_t> want[] = {{"id", json::value_t::string},
                                                               {"job", json::value_t::string},
                                                               {"durable", json::value_t::boolean},
                                                               {"stream", json::value_t::boolean}};
  for (auto& [key, type] : want) {
    auto it = req.find(key);
    if (it != req.end() && it->type() != type)
      return std::string("malformed job request: \"") + key + "\" must be " +
             (type == json::value_t::string ? "a string" : "true or false");
  }
  auto e = req.find("expires");
  if (e != req.end() && !e->is_number()) return "malformed job request: \"expires\" must be a number";
  return "";
}
}  // namespace

void JobRunner::handle(const std::string& from, const std::string& body, ReplyFn reply) {
  auto req = json::parse(body, nullptr, false);
  if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string())
    return reply("job", error_body("malformed job request"), false);
  // One bad request gets an error, never takes the node down: fields are
  // checked by type before any is read.
  if (std::string why = typed_fields_error(req); !why.empty()) return reply("job", error_body(why), false);
  std::string op = req["op"];
  if (op == "submit") return submit(from, req, std::move(reply));
  if (op == "status") return status(from, req, std::move(reply));
  if (op == "cancel") return cancel(from, req, std::move(reply));
  reply("job", error_body("unknown job operation '" + op + "'"), false);
}

// Names and @groups; "@all" is every authenticated peer. For a configured
// job the node's own tools (its own user, through the 0600 control socket)
// are not a peer; an ad-hoc command needs the node itself in allow_adhoc.
bool JobRunner::allowed(const std::string& from, const std::vector<std::string>& allow, bool own_node_ok) const {
  if (own_node_ok && from == cfg_.node) return true;
  for (auto& a : allow) {
    if (a == from || a == "*" || a == "@all") return true;
    if (a.size() > 1 && a[0] == '@' && in_group && in_group(from, a.substr(1))) return true;
  }
  return false;
}

bool JobRunner::resolve(const JobRecord& r, JobDef& def, std::string& err, bool check_allow) {
  if (r.job == kAdhoc) {
    std::vector<std::string> allow;
    for (auto& [n, on] : cfg_.allow_adhoc) allow.push_back(n);
    if (check_allow && !allowed(r.from, allow, false)) {
      err = "ad-hoc commands from " + r.from + " are not allowed on " + cfg_.node + " (see allow_adhoc in jsd.conf(5))";
      return false;
    }
    if (r.argv.empty() || r.argv[0].empty()) {
      err = "empty ad-hoc command";
      return false;
    }
    def = JobDef{};
    def.command = r.argv;
    return true;
  }
  auto it = cfg_.jobs.find(r.job);
  if (it == cfg_.jobs.end()) {
    err = "no job '" + r.job + "' on " + cfg_.node;
    return false;
  }
  def = it->second;
  if (check_allow && def.has_allow && !allowed(r.from, def.allow, true)) {
    err = cfg_.node + " refused job " + r.job + ": " + r.from + " is not allowed to run it";
    return false;
  }
  return true;
}

void JobRunner::submit(const std::string& from, const json& req, ReplyFn reply) {
  JobRecord r;
  r.from = from;
  r.submitted = wall_time();
  r.id = req.value("id", "");
  if (!valid_name(r.id)) return reply("job", error_body("invalid job id '" + r.id + "'"), false);
  r.durable = req.value("durable", false);
  if (req.contains("expires") && req["expires"].is_number() && r.submitted > req["expires"].get<double>()) {
    log_info("submission " + r.id + " from " + from + " expired before it arrived; not run");
    return reply(
        "job",
        error_body("submission " + r.id + " expired before it reached " + cfg_.node + " (its submitter gave up)"),
        false);
  }
  bool stream = req.value("stream", true);
  if (req.contains("argv")) {
    if (!req["argv"].is_array()) return reply("job", error_body("argv must be an array"), false);
    for (auto& a : req["argv"]) {
      if (!a.is_string()) return reply("job", error_body("argv must be an array of strings"), false);
      r.argv.push_back(a.get<std::string>());
    }
    r.job = kAdhoc;
  } else {
    r.job = req.value("job", "");
  }
  if (req.contains("params")) {
    if (!req["params"].is_object()) return reply("job", error_body("params must be an object"), false);
    for (auto& [k, v] : req["params"].items()) {
      if (!valid_param_name(k))
        return reply("job",
                     error_body("invalid parameter name '" + k + "' (letters, digits, _; not starting with a digit)"),
                     false);
      if (!v.is_string() || v.get<std::string>().find('\0') != std::string::npos)
        return reply("job", error_body("parameter " + k + " must be a string without NUL bytes"), false);
      r.params[k] = v.get<std::string>();
    }
  }
  // At most once per id: a resubmission (a retry, a redelivery) gets the
  // record, not a second run.
  if (JobRecord* old = store_.find(r.id)) {
    log_info("job " + r.id + " from " + from + " already known (" + old->state + "); not run again");
    if (old->from != from)  // someone else's job: say no more than that
      return reply("job", error_body("job id " + r.id + " is already taken on " + cfg_.node), false);
    return reply("job", dump_json({{"type", "duplicate"}, {"record", old->to_json()}}), false);
  }
  auto run = std::make_unique<Run>();
  std::string why;
  bool ok = resolve(r, run->def, why);
  if (audit) {
    json entry = {{"what", r.job == kAdhoc ? "adhoc" : "job"},
                  {"peer", from},
                  {"id", r.id},
                  {"verdict", ok ? "allowed" : "refused"}};
    if (r.job == kAdhoc)
      entry["argv"] = r.argv;
    else
      entry["job"] = r.job;
    if (!ok) entry["reason"] = why;
    if (!audit(entry, ok) && ok) {
      ok = false;
      why = "cannot write the audit log on " + cfg_.node;
    }
  }
  if (!ok) {
    log_warn("refused job '" + printable(r.job) + "' from " + from + ": " + why);
    return reply("job", error_body(why), false);
  }
  run->rec = &store_.add(r);
  // The id is remembered in memory at once; on disk, a job that starts now
  // is written once it runs. A durable submission is on disk (fsync'd)
  // before it is acknowledged, and so is one that has to wait.
  bool starts_now = running_count_[r.job] < run->def.max_parallel && waiting_[r.job].empty() && !stopping_;
  if (r.durable || !starts_now) save(*run->rec);
  if (!stream) {
    reply("job", dump_json({{"type", "accepted"}, {"record", run->rec->to_json()}}), false);
  } else {
    run->reply = std::move(reply);
  }
  enqueue(std::move(run));
}

void JobRunner::enqueue(std::unique_ptr<Run> run) {
  std::string job = run->rec->job;
  int limit = run->def.max_parallel;
  if (running_count_[job] < limit && waiting_[job].empty()) return start(std::move(run));
  if (run->reply)
    run->reply("job", dump_json({{"type", "queued"}, {"id", run->rec->id}, {"position", waiting_[job].size() + 1}}),
               true);
  waiting_[job].push_back(std::move(run));
}

void JobRunner::start_next(const std::string& job) {
  auto& q = waiting_[job];
  if (stopping_ || q.empty()) return;
  if (running_count_[job] >= q.front()->def.max_parallel) return;
  auto run = std::move(q.front());
  q.pop_front();
  start(std::move(run));
}

void JobRunner::start(std::unique_ptr<Run> owned) {
  Run* run = owned.get();
  JobRecord& r = *run->rec;
  // One value per name, later sources winning: the listener's environment,
  // then the job's env, then what jsd sets (JSD_* cannot be faked by config).
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    auto eq = s.find('=');
    if (eq == std::string::npos || s.rfind("JSD_", 0) == 0) continue;
    vars[s.substr(0, eq)] = s.substr(eq + 1);
  }
  for (auto& [k, v] : run->def.env)
    if (k.rfind("JSD_", 0) != 0) vars[k] = v;
  for (auto& [k, v] : r.params) vars["JSD_PARAM_" + k] = v;
  vars["JSD_JOB_ID"] = r.id;
  vars["JSD_JOB_NAME"] = r.job;
  vars["JSD_FROM_NODE"] = r.from;
  vars["JSD_NODE"] = cfg_.node;
  std::vector<std::string> env;
  env.reserve(vars.size());
  for (auto& [k, v] : vars) env.push_back(k + "=" + v);

  JobSpawn spec{run->def.command, std::move(env), run->def.cwd};
  std::string err;
  int out_fd = -1, err_fd = -1;
  int pid = -1;
  if (!run->def.cwd.empty() && access(run->def.cwd.c_str(), X_OK) != 0)
    err = "cwd " + run->def.cwd + ": " + strerror(errno);  // else it would read as the command's fault
  else
    pid = spawn_job(spec, out_fd, err_fd, err);
  r.started = wall_time();
  if (pid < 0) {
    r.state = "failed";
    r.error = "cannot start " + err;
    r.ended = r.started;
    log_warn("job " + r.id + " (" + r.job + "): " + r.error);
    save(r);
    if (run->reply) run->reply("job", dump_json({{"type", "ended"}, {"record", r.to_json()}}), false);
    return start_next(r.job);
  }
  run->pid = pid;
  run->out = Stream::pipe(loop_);
  run->err = Stream::pipe(loop_);
  uv_pipe_open(run->out->pipe_handle(), out_fd);
  uv_pipe_open(run->err->pipe_handle(), err_fd);
  running_count_[r.job]++;
  runs_[run] = std::move(owned);
  r.state = "running";
  r.pid = pid;
  // Confirm first, then write: the record is already in memory for status
  // queries, and the submitter should not wait for the file system.
  if (run->reply)
    run->reply("job",
               dump_json({{"type", "started"}, {"id", r.id}, {"job", r.job}, {"pid", r.pid}, {"started", r.started}}),
               true);
  // A short job's "running" record would be overwritten at once: write it
  // only once the job has run a while (durable ones at once).
  if (r.durable) {
    save(r);
  } else {
    run->persist = std::make_unique<Timer>(loop_);
    run->persist->start(kPersistRunningMs, [this, run] { save(*run->rec); });
  }
  log_info("job " + r.id + " (" + r.job + " from " + r.from + ") started, pid " + std::to_string(r.pid));

  auto wire = [this, run](Stream*& s, const char* object, std::string JobRecord::*tail) {
    Stream* st = s;
    st->on_data = [this, run, object, tail](std::string_view d) {
      append_tail(run->rec->*tail, d);
      if (run->reply) run->reply(object, std::string(d), true);
      check_backlog(run);
    };
    st->on_close = [this, run, &s](const std::string&) {
      s = nullptr;
      maybe_finish(run);
    };
    st->start();
  };
  wire(run->out, "job.stdout", &JobRecord::stdout_tail);
  wire(run->err, "job.stderr", &JobRecord::stderr_tail);
  reaper_.watch(pid, [this, run](int status, int sig) {
    run->pid = 0;
    run->exited = true;
    run->status = status;
    run->sig = sig;
    // Output still in the pipes is part of the job; a background process
    // that keeps them open is not: stop waiting for it after a moment.
    run->drain = std::make_unique<Timer>(loop_);
    run->drain->start(
        2000,
        [run] {
          if (run->paused) return;  // the output is only waiting for room: keep it
          // Closing one may finish (and free) the run: take both first.
          Stream* o = run->out;
          Stream* e = run->err;
          if (o) o->close();
          if (e) e->close();
        },
        2000);
    maybe_finish(run);
  });
  if (run->def.timeout_s > 0) {
    run->timeout = std::make_unique<Timer>(loop_);
    run->timeout->start(uint64_t(run->def.timeout_s * 1000), [this, run] {
      run->timed_out = true;
      terminate(run, "timeout_s (" + std::to_string(run->def.timeout_s) + " s) reached");
    });
  }
}

void JobRunner::terminate(Run* run, const std::string& why) {
  if (!run->pid) return;
  log_info("job " + run->rec->id + ": " + why + "; sending SIGTERM to its process group");
  ::kill(-run->pid, SIGTERM);
  run->grace = std::make_unique<Timer>(loop_);
  run->grace->start(uint64_t(cfg_.job_kill_grace_s * 1000), [run] {
    if (run->pid) ::kill(-run->pid, SIGKILL);
  });
}

// Backpressure: a job whose output its submitter's link cannot take waits
// (blocked writing to its pipe) instead of filling this node's memory.
void JobRunner::check_backlog(Run* run) {
  if (!backlog || run->paused || !run->reply) return;
  if (backlog(run->rec->from) < kHighWater) return;
  run->paused = true;
  if (run->out) run->out->pause();
  if (run->err) run->err->pause();
  log_info("job " + run->rec->id + ": output paused, " + std::to_string(backlog(run->rec->from) >> 20) +
           " MiB wait for " + run->rec->from);
  if (on_pause) on_pause();
  if (!run->resume) run->resume = std::make_unique<Timer>(loop_);
  run->resume->start(
      10,
      [this, run] {
        if (backlog(run->rec->from) > kLowWater) return;
        run->resume->stop();
        run->paused = false;
        if (run->out) run->out->resume();
        if (run->err) run->err->resume();
      },
      10);
}

void JobRunner::maybe_finish(Run* run) {
  if (run->exited && !run->out && !run->err) finish(run);
}

void JobRunner::finish(Run* run) {
  JobRecord& r = *run->rec;
  r.ended = wall_time();
  if (run->sig) {
    r.signal = run->sig;
    r.state = run->timed_out ? "timeout" : run->cancelled ? "cancelled" : "killed";
  } else {
    r.exit_code = int(run->status);
    r.state = run->timed_out ? "timeout" : run->cancelled ? "cancelled" : "exited";
  }
  if (run->reply) run->reply("job", dump_json({{"type", "ended"}, {"record", r.to_json()}}), false);
  save(r);
  log_info("job " + r.id + " (" + r.job + ") ended: " + r.state + ", exit status " + std::to_string(r.exit_status()));
  std::string job = r.job;
  running_count_[job]--;
  runs_.erase(run);  // frees run (its timers close themselves)
  // The pruning rule, applied in batches: a sort per finished job would be
  // the most expensive thing about a short job.
  if (++finished_since_prune_ >= 64 || now_ms() - last_prune_ms_ > 60000) {
    store_.prune(wall_time());
    finished_since_prune_ = 0;
    last_prune_ms_ = now_ms();
  }
  start_next(job);
  if (stopping_ && runs_.empty() && on_idle) on_idle();
}

// The record of the job a request names, if the requester may see it (the
// node that submitted it, or this node itself); otherwise answers and null.
JobRecord* JobRunner::own_record(const std::string& from, const json& req, ReplyFn& reply) {
  std::string id = req.value("id", "");
  JobRecord* r = store_.find(id);
  if (!r)
    reply("job", error_body("no job '" + id + "' on " + cfg_.node), false);
  else if (r->from != from && from != cfg_.node)
    reply("job", error_body("job " + id + " was not submitted by " + from), false);
  else
    return r;
  return nullptr;
}

void JobRunner::status(const std::string& from, const json& req, ReplyFn reply) {
  if (JobRecord* r = own_record(from, req, reply))
    reply("job", dump_json({{"type", "status"}, {"record", r->to_json()}}), false);
}

void JobRunner::cancel(const std::string& from, const json& req, ReplyFn reply) {
  JobRecord* r = own_record(from, req, reply);
  if (!r) return;
  if (r->state == "queued") {
    auto& q = waiting_[r->job];
    for (auto it = q.begin(); it != q.end(); ++it) {
      if ((*it)->rec != r) continue;
      r->state = "cancelled";
      r->ended = wall_time();
      save(*r);
      if ((*it)->reply) (*it)->reply("job", dump_json({{"type", "ended"}, {"record", r->to_json()}}), false);
      q.erase(it);
      break;
    }
  } else if (r->state == "running") {
    for (auto& [p, run] : runs_) {
      if (run->rec != r) continue;
      run->cancelled = true;
      terminate(p, "cancelled by " + from);
    }
  }
  reply("job", dump_json({{"type", "cancel"}, {"record", r->to_json()}}), false);
}

void JobRunner::stop_all() {
  stopping_ = true;
  flush_timer_.stop();
  flush_records();
  waiting_.clear();  // their records stay "queued": they run after a restart
  for (auto& [p, run] : runs_) terminate(p, "the node is stopping");
  if (runs_.empty() && on_idle) on_idle();
}

void JobRunner::kill_all() {
  for (auto& [p, run] : runs_)
    if (run->pid) ::kill(-run->pid, SIGKILL);
}

json JobRunner::status_json() const {
  json running = json::array();
  for (auto& [p, run] : runs_)
    running.push_back({{"id", run->rec->id}, {"job", run->rec->job}, {"from", run->rec->from}, {"pid", run->rec->pid}});
  size_t waiting = 0;
  for (auto& [k, q] : waiting_) waiting += q.size();
  return {{"running", running}, {"queued", waiting}};
}

}  // namespace jsd
