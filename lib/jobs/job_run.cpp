#include "job_run.h"

#include <signal.h>

#include <algorithm>

#include "jsd_limits.h"
#include "log.h"

extern char** environ;

namespace jsd {

using nlohmann::json;

namespace {
constexpr uint64_t kPersistRunningMs = 100;
// Output still in the pipes after the job exited is part of the job; a
// background process that keeps them open is not: stop waiting after this.
constexpr uint64_t kDrainMs = 2000;
constexpr uint64_t kResumePollMs = 10;

// One value per name, later sources winning: the listener's environment,
// then the job's env, then what jsd sets (JSD_* cannot be faked by config).
std::vector<std::string> job_environment(const JobRecord& r, const JobDef& def, const std::string& node) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    auto eq = s.find('=');
    if (eq == std::string::npos || s.rfind("JSD_", 0) == 0) continue;
    vars[s.substr(0, eq)] = s.substr(eq + 1);
  }
  for (auto& [k, v] : def.env)
    if (k.rfind("JSD_", 0) != 0) vars[k] = v;
  for (auto& [k, v] : r.params) vars["JSD_PARAM_" + k] = v;
  vars["JSD_JOB_ID"] = r.id;
  vars["JSD_JOB_NAME"] = r.job;
  vars["JSD_FROM_NODE"] = r.from;
  vars["JSD_NODE"] = node;
  std::vector<std::string> env;
  env.reserve(vars.size());
  for (auto& [k, v] : vars) env.push_back(k + "=" + v);
  return env;
}
}  // namespace

std::string job_error_body(const std::string& why) { return dump_json({{"type", "error"}, {"error", why}}); }

bool JobRuns::starts_now(const std::string& job, int max_parallel) {
  return running_count_[job] < max_parallel && waiting_[job].empty() && !stopping_;
}

void JobRuns::enqueue(std::unique_ptr<Run> run) {
  std::string job = run->rec->job;
  int limit = run->def.max_parallel;
  if (running_count_[job] < limit && waiting_[job].empty()) return start(std::move(run));
  if (run->reply)
    run->reply("job", dump_json({{"type", "queued"}, {"id", run->rec->id}, {"position", waiting_[job].size() + 1}}),
               true);
  waiting_[job].push_back(std::move(run));
}

void JobRuns::start_next(const std::string& job) {
  auto& q = waiting_[job];
  if (stopping_ || q.empty()) return;
  if (running_count_[job] >= q.front()->def.max_parallel) return;
  auto run = std::move(q.front());
  q.pop_front();
  start(std::move(run));
}

void JobRuns::start(std::unique_ptr<Run> owned) {
  Run* run = owned.get();
  JobRecord& r = *run->rec;
  r.started = clock_.wall_time();
  // An absolute deadline: a listener that restarts keeps it.
  if (run->def.timeout_s > 0) r.deadline = r.started + run->def.timeout_s;
  r.state = "running";
  JobSpawn spec{run->def.command, job_environment(r, run->def, cfg_.node), run->def.cwd, r.id, dump_json(r.to_json()),
                r.input};
  StartError err;
  run->proc = procs_.start(spec, err);
  if (!run->proc) {
    not_started(run, err);
    return start_next(r.job);
  }
  running_count_[r.job]++;
  runs_[run] = std::move(owned);
  // The supervisor answers on the loop (or at once, for fakes): the job is
  // confirmed to its submitter when it runs.
  if (!run->proc->pid()) return watch(run);
  started(run);
  watch(run);
}

// The job's own command missing is its failure (127, like a shell);
// anything else (no descriptors, no processes) is jsd's (255): it did not
// run and will not.
void JobRuns::not_started(Run* run, const StartError& err) {
  JobRecord& r = *run->rec;
  r.state = "failed";
  r.deadline = 0;
  r.error = start_error(err.what);
  r.jsd_failure = !err.command;
  r.ended = r.started;
  log_warn("job " + r.id + " (" + r.job + "): " + r.error);
  hooks_.save(r);
  tell(run, "job", dump_json({{"type", "ended"}, {"record", r.to_json()}}), false);
}

void JobRuns::started(Run* run) {
  JobRecord& r = *run->rec;
  run->pid = run->proc->pid();
  r.pid = run->pid;
  if (r.input) open_input(run);  // before the confirmation: the submitter's input follows it
  // Confirm first, then write: the record is already in memory for status
  // queries, and the submitter should not wait for the file system.
  tell(run, "job",
       dump_json({{"type", "started"}, {"id", r.id}, {"job", r.job}, {"pid", r.pid}, {"started", r.started}}), true);
  // A short job's "running" record would be overwritten at once: write it
  // only once the job has run a while (durable ones at once).
  if (r.durable) {
    hooks_.save(r);
  } else {
    run->persist = clock_.timer();
    run->persist->start(kPersistRunningMs, [this, run] { hooks_.save(*run->rec); });
  }
  log_info("job " + r.id + " (" + r.job + " from " + r.from + ") started, pid " + std::to_string(r.pid));
  // A cancel or timeout that came while it was starting.
  if (run->term_sig) procs_.signal_group(run->pid, run->term_sig);
}

void JobRuns::adopt(std::unique_ptr<Run> owned) {
  Run* run = owned.get();
  JobRecord& r = *run->rec;
  run->pid = run->proc->pid();
  r.pid = run->pid;
  r.state = "running";
  // Its output goes on from where the supervisor is now (what came before
  // is in its directory).
  r.stdout_bytes = run->proc->first_offset(1);
  r.stderr_bytes = run->proc->first_offset(2);
  running_count_[r.job]++;
  runs_[run] = std::move(owned);
  hooks_.save(r);
  log_info("job " + r.id + " (" + r.job + " from " + r.from + ") still runs, pid " + std::to_string(r.pid) +
           "; re-adopted");
  watch(run);
}

void JobRuns::watch(Run* run) {
  run->out_open = run->err_open = true;
  JobEvents ev;
  ev.output = [this, run](int fd, std::string_view d) {
    (fd == 1 ? run->rec->stdout_bytes : run->rec->stderr_bytes) += d.size();
    append_tail(fd == 1 ? run->rec->stdout_tail : run->rec->stderr_tail, d);
    tell(run, fd == 1 ? "job.stdout" : "job.stderr", d, true);
    check_backlog(run);
  };
  ev.output_closed = [this, run](int fd) {
    (fd == 1 ? run->out_open : run->err_open) = false;
    maybe_finish(run);
  };
  ev.exited = [this, run](int code, int sig) { on_exit(run, code, sig); };
  ev.started = [this, run](int) { started(run); };
  ev.start_failed = [this, run](const StartError& err) {
    std::string job = run->rec->job;
    not_started(run, err);
    running_count_[job]--;
    runs_.erase(run);
    hooks_.ended();
    start_next(job);
    if (stopping_ && runs_.empty() && hooks_.on_idle) hooks_.on_idle();
  };
  ev.end = [run](const JobEnd& e) {
    JobRecord& r = *run->rec;
    run->ended_at = e.ended;
    r.stdout_bytes = e.out_bytes;
    r.stderr_bytes = e.err_bytes;
    r.stdout_dropped = e.out_dropped;
    r.stderr_dropped = e.err_dropped;
  };
  if (run->rec->deadline > 0) {
    double left = std::max(0.0, run->rec->deadline - clock_.wall_time());
    run->timeout = clock_.timer();
    run->timeout->start(uint64_t(left * 1000), [this, run] {
      run->timed_out = true;
      terminate(run, "timeout_s (" + std::to_string(run->def.timeout_s) + " s) reached");
    });
  }
  // Last: the job may be found ended (and finished) within this call.
  run->proc->run(std::move(ev));
}

void JobRuns::on_exit(Run* run, int code, int sig) {
  run->pid = 0;
  run->exited = true;
  run->unknown = code < 0 && sig == 0;
  run->status = code;
  run->sig = sig;
  run->drain = clock_.timer();
  run->drain->start(
      kDrainMs,
      [run] {
        if (run->paused) return;  // the output is only waiting for room: keep it
        run->proc->close_output();
      },
      kDrainMs);
  maybe_finish(run);
}

void JobRuns::terminate(Run* run, const std::string& why) {
  if (run->exited) return;
  log_info("job " + run->rec->id + ": " + why + "; sending SIGTERM to its process group");
  send_signal(run, SIGTERM);
  run->grace = clock_.timer();
  run->grace->start(uint64_t(cfg_.job_kill_grace_s * 1000), [this, run] {
    if (!run->exited) send_signal(run, SIGKILL);
  });
}

// Through the job's own process (which reaches it while it starts, and
// after its supervisor changed), else by pid.
void JobRuns::send_signal(Run* run, int sig) {
  if (run->proc && run->proc->signal(sig)) return;
  if (run->pid)
    procs_.signal_group(run->pid, sig);
  else
    run->term_sig = sig;  // sent once it runs
}

// Backpressure: a job whose output its submitter's link cannot take waits
// (blocked writing to its pipe) instead of filling this node's memory.
void JobRuns::check_backlog(Run* run) {
  auto& backlog = hooks_.backlog;
  if (!backlog || run->paused || (!run->reply && run->watchers.empty())) return;
  if (backlog(run->rec->from) < kOutputHighWater) return;
  run->paused = true;
  run->proc->pause_output();
  log_info("job " + run->rec->id + ": output paused, " + std::to_string(backlog(run->rec->from) >> 20) +
           " MiB wait for " + run->rec->from);
  if (hooks_.on_pause) hooks_.on_pause();
  if (!run->resume) run->resume = clock_.timer();
  run->resume->start(
      kResumePollMs,
      [this, run] {
        if (hooks_.backlog(run->rec->from) > kOutputLowWater) return;
        run->resume->stop();
        run->paused = false;
        run->proc->resume_output();
      },
      kResumePollMs);
}

void JobRuns::maybe_finish(Run* run) {
  if (run->exited && !run->out_open && !run->err_open) finish(run);
}

void JobRuns::finish(Run* run) {
  JobRecord& r = *run->rec;
  r.ended = run->ended_at > 0 ? run->ended_at : clock_.wall_time();
  if (run->unknown) {
    // jsd cannot know how it ended (exit status 254, like jsd-submit's
    // "cannot know"): never a false end.
    r.state = "unknown";
    r.error = "how the job ended is unknown: its supervisor died and the job was not its listener's child";
  } else if (run->sig) {
    r.signal = run->sig;
    r.state = run->timed_out ? "timeout" : run->cancelled ? "cancelled" : "killed";
  } else {
    r.exit_code = int(run->status);
    r.state = run->timed_out ? "timeout" : run->cancelled ? "cancelled" : "exited";
  }
  tell(run, "job", dump_json({{"type", "ended"}, {"record", r.to_json()}}), false);
  hooks_.save(r);
  log_info("job " + r.id + " (" + r.job + ") ended: " + r.state + ", exit status " + std::to_string(r.exit_status()));
  std::string job = r.job;
  running_count_[job]--;
  runs_.erase(run);  // frees run (its timers stop, its process object goes)
  hooks_.ended();
  start_next(job);
  if (stopping_ && runs_.empty() && hooks_.on_idle) hooks_.on_idle();
}

void JobRuns::cancel(JobRecord& r, const std::string& by) {
  if (r.state == "queued") {
    auto& q = waiting_[r.job];
    for (auto it = q.begin(); it != q.end(); ++it) {
      if ((*it)->rec != &r) continue;
      r.state = "cancelled";
      r.ended = clock_.wall_time();
      hooks_.save(r);
      tell(it->get(), "job", dump_json({{"type", "ended"}, {"record", r.to_json()}}), false);
      q.erase(it);
      break;
    }
  } else if (r.state == "running") {
    for (auto& [p, run] : runs_) {
      if (run->rec != &r) continue;
      run->cancelled = true;
      terminate(p, "cancelled by " + by);
    }
  }
}

void JobRuns::open_input(Run* run) {
  std::string err;
  auto cut = [this, run](const std::string& why) {
    run->rec->error = "its input was cut: " + why;
    log_warn("job " + run->rec->id + ": " + run->rec->error);
    run->cancelled = true;
    terminate(run, "its input was cut");
  };
  auto in = run->proc->open_input(err);
  if (!in) return cut("cannot open the job's stdin: " + err);
  // Acknowledgements go to the submission's own call only: a watcher
  // (--attach) sends no input.
  auto ack = [run](const InputAck& a) {
    if (run->reply) run->reply("job.stdin", encode_input_ack(a), true);
  };
  run->input = std::make_unique<RunInput>(std::move(in), ack, cut);
}

void JobRuns::input(const std::string& from, const InputChunk& c) {
  for (auto& [p, run] : runs_) {
    if (run->rec->id != c.id) continue;
    if (run->rec->from != from)
      return log_warn("stdin for job " + run->rec->id + " from " + from + ", not its submitter; dropped");
    if (run->input) run->input->chunk(c);
    return;
  }
  if (!c.cut()) return;  // for no run: it ended, or never started here
  for (auto& [job, q] : waiting_)
    for (auto& run : q)
      if (run->rec->id == c.id && run->rec->from == from) {
        run->rec->error = "its input was cut: " + printable(c.data, 200);
        return cancel(*run->rec, from);
      }
}

void JobRuns::tell(Run* run, const std::string& object, std::string_view body, bool more) {
  if (run->reply) run->reply(object, std::string(body), more);
  for (auto& w : run->watchers) w(object, std::string(body), more);
}

bool JobRuns::watch_run(JobRecord& r, ReplyFn w) {
  for (auto& [p, run] : runs_)
    if (run->rec == &r) return run->watchers.push_back(std::move(w)), true;
  for (auto& [job, q] : waiting_)
    for (auto& run : q)
      if (run->rec == &r) return run->watchers.push_back(std::move(w)), true;
  return false;
}

void JobRuns::stop_all() {
  stopping_ = true;
  waiting_.clear();  // their records stay "queued": they run after a restart
  for (auto& [p, run] : runs_) terminate(p, "the node is stopping");
  if (runs_.empty() && hooks_.on_idle) hooks_.on_idle();
}

size_t JobRuns::abandon() {
  size_t n = runs_.size();
  for (auto& [p, run] : runs_)
    if (!run->exited && run->pid > 0) ::kill(-run->pid, SIGKILL);
  runs_.clear();
  running_count_.clear();
  return n;
}

void JobRuns::kill_all() {
  for (auto& [p, run] : runs_)
    if (!run->exited) send_signal(run.get(), SIGKILL);
}

json JobRuns::status_json() const {
  json running = json::array();
  for (auto& [p, run] : runs_)
    running.push_back({{"id", run->rec->id}, {"job", run->rec->job}, {"from", run->rec->from}, {"pid", run->rec->pid}});
  size_t waiting = 0;
  for (auto& [k, q] : waiting_) waiting += q.size();
  return {{"running", running}, {"queued", waiting}};
}

}  // namespace jsd
