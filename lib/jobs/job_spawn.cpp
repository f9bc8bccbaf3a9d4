#include "job_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "files.h"
#include "job_spawn_sup.h"
#include "job_stdin.h"
#include "job_supervisor.h"
#include "log.h"
#include "uvx.h"
#include "wire.h"

namespace jsd {

namespace {
// Now, in seconds since the epoch, to the microsecond (a record's times).
double wall_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}
}  // namespace

namespace {
class SupervisedJob : public JobProcess {
 public:
  explicit SupervisedJob(std::shared_ptr<PosixJobProcesses::Sup> st) : st_(std::move(st)) {}
  ~SupervisedJob() override {
    st_->gone = true;  // not cleared: one of its functions may be running right now
    if (st_->owner && !st_->starting) st_->owner->forget(st_->id, st_.get());
  }
  int pid() const override { return st_->pid; }
  void run(JobEvents events) override { st_->ev = std::move(events); }
  void pause_output() override { tell(SupMsg::pause); }
  void resume_output() override { tell(SupMsg::resume); }
  bool signal(int sig) override {
    tell(SupMsg::kill, sig);
    return true;
  }
  // The supervisor drains the pipes itself; only the reports are left.
  void close_output() override {
    auto st = st_;
    st->close_streams();
  }
  uint64_t first_offset(int fd) const override { return st_->first[fd == 2 ? 1 : 0]; }
  // Once all is written, the supervisor lets go of its end too (I).
  std::unique_ptr<JobInput> open_input(std::string& err) override {
    if (!st_->owner || st_->ended) return err = "the job has ended", nullptr;
    // (The input goes before this process object: JobRuns::Run.)
    return open_fifo_input(
        st_->owner->loop(), job_fifo(st_->dir, 0), [this] { tell(SupMsg::input_done); }, err);
  }

 private:
  void tell(SupMsg m, int sig = 0) {
    if (st_->owner && !st_->ended) st_->owner->control(encode_sup_job(m, st_->id, sig));
  }
  std::shared_ptr<PosixJobProcesses::Sup> st_;
};
}  // namespace

PosixJobProcesses::PosixJobProcesses(uv_loop_t* loop, std::string jobs_dir, std::string supervisor, uint64_t keep,
                                     uint64_t slow_after_ms)
    : loop_(loop),
      reaper_(loop),
      jobs_dir_(std::move(jobs_dir)),
      supervisor_(std::move(supervisor)),
      keep_(keep),
      slow_(slow_after_ms),
      slow_timer_(loop) {
  // The jobs of a supervisor we spawn are our descendants: if it dies, they
  // become our children, and we learn how they end.
  subreaper_ = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
}

PosixJobProcesses::~PosixJobProcesses() {
  bool idle = sups_.empty();
  for (auto& [id, st] : sups_) st->owner = nullptr;
  for (auto& st : pending_) st->owner = nullptr;
  // The supervisor goes on with the jobs, if any; it ends itself once it
  // has none and no listener. (uv_close closes the stream's descriptor at
  // once: it sees both connections end now.)
  if (ctl_) ctl_->discard();
  if (ev_) ev_->discard();
  ctl_ = ev_ = nullptr;
  // A listener that stops in order has ended its jobs: it reaps the
  // supervisor it started rather than leave it to init (and the state
  // directory is quiet once it is gone).
  if (!idle || sup_pid_ <= 0 || !sup_ours_) return;
  int fd = int(syscall(SYS_pidfd_open, sup_pid_, 0));
  if (fd < 0) return;
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, 2000);
  while (rc < 0 && errno == EINTR);
  ::close(fd);
  if (rc > 0) waitpid(sup_pid_, nullptr, WNOHANG);
}

void PosixJobProcesses::forget(const std::string& id, const Sup* which) {
  auto it = sups_.find(id);
  // Only that one: a refused second start of a running id is not the job.
  if (it != sups_.end() && it->second.get() == which) {
    it->second->release();
    sups_.erase(it);
  }
  hold_loop();
  if (sups_.empty() && pending_.empty()) retire();
}

void PosixJobProcesses::control(const std::string& payload) {
  if (ctl_)
    ctl_->send(payload);
  else
    queued_.push_back(payload);
}

// Its jobs are not ended by its death: each is taken over by the next
// supervisor, and a start it never answered is settled by the disk.
void PosixJobProcesses::supervisor_gone(const std::string& why) {
  ++generation_;  // the dead one's watches and connections are stale now
  bool ours = sup_ours_ && subreaper_;
  if (ctl_) ctl_->discard();
  if (ev_) ev_->discard();
  ctl_ = ev_ = nullptr;
  sup_pid_ = 0;
  sup_ours_ = false;
  running_.clear();
  queued_.clear();  // for the dead one: the takeover says everything again
  // It died before it listed its jobs: they are found by their pids (job.json),
  // once the rest is settled.
  bool unlisted = std::exchange(awaiting_list_, false);
  auto pending = std::move(pending_);
  pending_.clear();
  size_t running = 0;
  for (auto& [id, st] : sups_)
    if (!st->starting) ++running;
  if (running || !pending.empty())
    log_error("the job supervisor went away (" + why + "): " + std::to_string(running) + " running job(s) go on and " +
              std::to_string(pending.size()) + " start(s) were unanswered; a new supervisor takes them over");
  std::vector<std::shared_ptr<Sup>> resend;
  for (auto& st : pending) {
    if (st->ended || !st->owner) continue;
    struct stat sb;
    if (stat(st->dir.c_str(), &sb) != 0) {
      resend.push_back(st);  // it never made the job's directory: the job did not start
      continue;
    }
    JobEnd e;
    int pid = 0;
    uint64_t ticks = 0;
    bool ended = read_job_end(st->dir, e);
    if (ended && !e.error.empty()) {
      st->start_failed({e.error, e.command});
    } else if (read_job_pid(st->dir, pid, ticks) || ended) {
      // It started: its end is on disk, or it is an orphan like the others.
      st->ours = ours;
      sups_[st->id] = st;
      st->started(pid);
    } else {
      // Its directory is there, its pid is not: it may have run.
      log_error("job " + st->id + ": its supervisor died as it started it; whether it ran is unknown");
      JobEnd unknown;
      unknown.known = true;
      unknown.ended = wall_now();
      st->deliver(unknown);
    }
  }
  for (auto& [id, st] : sups_) {
    if (st->starting) continue;
    if (ours) st->ours = true;
    take_over(*st);
  }
  for (auto& st : resend) {
    st->sent_ms = now_ms();  // to the next supervisor
    pending_.push_back(st);
    queued_.push_back(st->start_msg);
  }
  hand_over();
  if (unlisted) ready();
  review_slow();
}

// A job whose supervisor died: the output it kept is reported, its end
// read if it wrote one, else the job is an orphan for the next supervisor.
void PosixJobProcesses::take_over(Sup& st) {
  auto keep = sups_[st.id];  // deliver() may forget it
  st.catch_up();
  JobEnd e;
  if (read_job_end(st.dir, e)) return st.deliver(e);
  int pid = 0;
  if (!st.ours && !job_process_lives(st.dir, pid)) {
    // Not our child, and gone: how it ended is unknown, when is now.
    JobEnd unknown;
    unknown.known = true;
    unknown.ended = wall_now();
    return st.deliver(unknown);
  }
  st.orphan = true;
  st.hold_fifos();
  if (st.ours && st.reaped_code == -2) {
    std::weak_ptr<Sup> w = keep;
    reaper_.watch(st.pid, [this, w](int code, int sig) {
      auto s = w.lock();
      if (!s || s->ended) return;
      s->reaped_code = sig ? 0 : code;
      s->reaped_sig = sig;
      control(encode_sup_reaped(s->id, s->reaped_code, sig));
    });
  }
}

// A new supervisor for the orphans and the starts to send again.
void PosixJobProcesses::hand_over() {
  bool orphans = false;
  for (auto& [id, st] : sups_) orphans |= st->orphan;
  if (!orphans && pending_.empty()) return;
  std::string err;
  if (!ctl_ && !spawn_supervisor(err) && !connect_supervisor(err)) {
    log_error("cannot start a job supervisor: " + err);
    // Nothing will start the ones not started: they did not run and will not.
    auto pending = std::move(pending_);
    pending_.clear();
    queued_.clear();
    for (auto& st : pending) st->start_failed({"no job supervisor: " + err, false});
    for (auto& [id, st] : std::map<std::string, std::shared_ptr<Sup>>(sups_)) {
      if (!st->orphan) continue;
      JobEnd unknown;
      unknown.known = true;
      unknown.ended = wall_now();
      st->deliver(unknown);
    }
    return;
  }
  std::vector<std::string> later = std::move(queued_);
  queued_.clear();
  for (auto& [id, st] : sups_) {
    if (!st->orphan) continue;
    ctl_->send(encode_sup_adopt(id, st->pid, st->ours));
    if (st->reaped_code != -2) ctl_->send(encode_sup_reaped(id, st->reaped_code, st->reaped_sig));
    st->orphan = false;
  }
  for (auto& m : later) ctl_->send(m);
  hold_loop();
}

void PosixJobProcesses::on_reply(std::string_view reply) {
  if (pending_.empty()) return;
  auto st = pending_.front();
  pending_.pop_front();
  review_slow();
  if (reply.size() == 5 && reply[0] == char(SupMsg::started)) {
    int pid = int(WireReader(reply.substr(1)).u32());
    if (st->ended) return;
    st->ours = sup_ours_ && subreaper_;
    sups_[st->id] = st;
    st->started(pid);
    for (auto& m : std::exchange(st->early, {})) on_event(m);
    hold_loop();
    return;
  }
  std::string_view none;
  JobEnd e;
  if (decode_sup_end(reply, none, e) && !e.error.empty())
    st->start_failed({e.error, e.command});
  else
    st->start_failed({"the job supervisor's answer to a start is garbled", false});
  hold_loop();
}

void PosixJobProcesses::on_event(std::string_view p) {
  if (p.empty()) return;
  std::string_view id;
  // The answer to a start comes on the control connection, the job's
  // output and end on this one: either may be read first. What comes for
  // a job whose start is not answered yet waits for that answer. Each
  // message is decoded once (an end is JSON text, its parse most of what a
  // job's end costs here).
  int fd = 0;
  std::string_view bytes;
  JobEnd e;
  bool is_output = p[0] == char(SupMsg::output);
  if (is_output ? !decode_sup_output(p, id, fd, bytes) : p[0] != char(SupMsg::end) || !decode_sup_end(p, id, e)) return;
  auto it = sups_.find(std::string(id));
  if (it == sups_.end()) {
    for (auto& st : pending_)
      if (st->id == id) return (void)st->early.emplace_back(p);
    return;
  }
  if (is_output) {
    auto st = it->second;
    st->output(fd, bytes);
    return;
  }
  auto st = it->second;
  // An adopted job's end is the supervisor's; how it exited is ours when
  // we reaped it.
  if (st->reaped_code != -2 && e.exit_code < 0 && !e.signal) {
    e.exit_code = st->reaped_sig ? -1 : st->reaped_code;
    e.signal = st->reaped_sig;
  }
  st->deliver(e);
}

std::shared_ptr<PosixJobProcesses::Sup> PosixJobProcesses::attach(const std::string& id, int pid, uint64_t out,
                                                                  uint64_t err) {
  auto st = std::make_shared<Sup>();
  st->owner = this;
  st->id = id;
  st->dir = job_dir(jobs_dir_, id);
  st->pid = pid;
  st->first[0] = st->seen[0] = out;
  st->first[1] = st->seen[1] = err;
  sups_[id] = st;
  st->hold_fifos();
  hold_loop();
  return st;
}

std::unique_ptr<JobProcess> PosixJobProcesses::start(const JobSpawn& spec, StartError& err) {
  if (spec.argv.empty()) {
    err = {"empty command", true};
    return nullptr;
  }
  // The cwd is checked here, or a missing one would read as the command's
  // absence (posix_spawn reports the chdir's ENOENT).
  if (!spec.cwd.empty() && access(spec.cwd.c_str(), X_OK) != 0) {
    err = {"cwd " + spec.cwd + ": " + strerror(errno), true};
    return nullptr;
  }
  // A supervisor whose connection ended but whose process has not (yet)
  // been seen to end: the start waits for the takeover (supervisor_gone).
  std::string why;
  if (!(ctl_ || sup_pid_ > 0) && !supervisor(why)) {
    err = {"no job supervisor: " + why, false};
    return nullptr;
  }
  // The supervisor makes the job's directory, the mark of a started id
  // (job_files.h), and spawns the job; an id whose directory exists is
  // never started again. Its answer comes on the loop (on_reply).
  auto st = std::make_shared<Sup>();
  st->owner = this;
  st->id = spec.id;
  st->dir = job_dir(jobs_dir_, spec.id);
  st->starting = true;
  st->start_msg = encode_sup_start(SupStart{spec.id, spec.cwd, spec.argv, spec.env, spec.record, spec.input});
  st->sent_ms = now_ms();
  pending_.push_back(st);
  control(st->start_msg);
  hold_loop();
  review_slow();
  return std::make_unique<SupervisedJob>(st);
}

void PosixJobProcesses::signal_group(int pid, int sig) {
  for (auto& [id, st] : sups_)
    if (st->pid == pid && !st->ended) {
      control(encode_sup_job(SupMsg::kill, id, sig));
      return;
    }
}

std::vector<std::pair<std::string, std::string>> PosixJobProcesses::started_before() {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& id : list_job_dirs(jobs_dir_)) out.emplace_back(id, read_job_record_text(job_dir(jobs_dir_, id)));
  return out;
}

std::unique_ptr<JobProcess> PosixJobProcesses::adopt(const std::string& id, JobEnd& end) {
  std::string dir = job_dir(jobs_dir_, id);
  if (read_job_end(dir, end)) return nullptr;
  // The supervisor writes a job's end before it forgets the job: one
  // it does not list has its end on disk, or it runs without a supervisor
  // (found by its pid in job.json), or nobody knows how it ended.
  auto it = running_.find(id);
  if (it != running_.end() && ctl_ && !sups_.count(id))
    return std::make_unique<SupervisedJob>(attach(id, it->second.pid, it->second.out, it->second.err));
  int pid = 0;
  if (!sups_.count(id) && job_process_lives(dir, pid)) {
    std::string why;
    if (supervisor(why)) {
      // Not our descendant: its end is seen, its exit status unknown.
      auto st = attach(id, pid, kept_end(dir, 1), kept_end(dir, 2));
      log_info("job " + id + " runs without a supervisor (pid " + std::to_string(pid) + "); the supervisor adopts it");
      control(encode_sup_adopt(id, pid, false));
      return std::make_unique<SupervisedJob>(st);
    }
    log_error("job " + id + " runs without a supervisor (pid " + std::to_string(pid) + "), and none starts: " + why);
  }
  if (read_job_end(dir, end)) return nullptr;
  end = JobEnd{};
  end.known = true;  // it ended, when is all we know
  end.ended = wall_now();
  return nullptr;
}

KeptOutput PosixJobProcesses::kept_output(const std::string& id, int fd, uint64_t from) {
  return read_kept_output(job_dir(jobs_dir_, id), fd, from);
}

}  // namespace jsd
