// Fakes of the JobRunner's processes, clock and disk (lib/jobs/job_io.h):
// the runner's rules are tested without a loop, a process or a disk. Every
// fake writes what it was asked to do into one Journal, so a test can check
// the order of things (a durable record is synced before its job starts).
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "jobs/job_io.h"

namespace jsd::fake {

struct Journal {
  std::vector<std::string> lines;
  void add(std::string l) { lines.push_back(std::move(l)); }
  // Index of the first line equal to l, or -1.
  long find(const std::string& l) const {
    auto it = std::find(lines.begin(), lines.end(), l);
    return it == lines.end() ? -1 : long(it - lines.begin());
  }
};

// Time stands still until advance(), which fires the timers that are due,
// in order.
class Clock : public JobClock {
 public:
  double wall_time() override { return 1.7e9 + double(mono_) / 1000; }
  uint64_t now_ms() override { return mono_; }
  std::unique_ptr<JobTimer> timer() override {
    auto s = std::make_shared<Slot>();
    slots_.push_back(s);
    return std::make_unique<Timer>(s, this);
  }
  void advance(uint64_t ms) {
    uint64_t until = mono_ + ms;
    for (;;) {
      std::shared_ptr<Slot> next;
      slots_.erase(std::remove_if(slots_.begin(), slots_.end(), [](auto& s) { return s->gone; }), slots_.end());
      for (auto& s : slots_)
        if (s->active && s->due <= until && (!next || s->due < next->due)) next = s;
      if (!next) break;
      mono_ = next->due;
      if (next->repeat)
        next->due += next->repeat;
      else
        next->active = false;
      auto fn = next->fn;  // the callback may destroy or restart its timer
      fn();
    }
    mono_ = until;
  }

 private:
  struct Slot {
    bool active = false, gone = false;
    uint64_t due = 0, repeat = 0;
    std::function<void()> fn;
  };
  class Timer : public JobTimer {
   public:
    Timer(std::shared_ptr<Slot> s, Clock* c) : s_(std::move(s)), c_(c) {}
    ~Timer() override { s_->active = false, s_->gone = true; }
    void start(uint64_t ms, std::function<void()> fn, uint64_t repeat_ms) override {
      s_->active = true;
      s_->due = c_->mono_ + ms;
      s_->repeat = repeat_ms;
      s_->fn = std::move(fn);
    }
    void stop() override { s_->active = false; }
    bool active() const override { return s_->active; }

   private:
    std::shared_ptr<Slot> s_;
    Clock* c_;
  };
  uint64_t mono_ = 1000;
  std::vector<std::shared_ptr<Slot>> slots_;
};

// Records in a map; "write ID STATE sync|async" and "remove ID" in the
// journal. Background work runs at once, or waits for run_held() when held.
class Disk : public RecordDisk {
 public:
  explicit Disk(Journal& j) : j_(j) {}
  std::map<std::string, std::string> files;
  bool hold = false;
  bool full = false;  // every write fails, as on a full disk
  bool load_all(std::vector<File>& out, std::string&) override {
    for (auto& [id, text] : files) out.push_back({id, "fake/" + id + ".json", text});
    return true;
  }
  bool write(const std::string& id, const std::string& text, bool sync, std::string& err) override {
    if (full) {
      err = "cannot write fake/" + id + ".json.tmp: No space left on device";
      j_.add("full " + id);
      return false;
    }
    files[id] = text;
    j_.add("write " + id + " " + state(id) + (sync ? " sync" : " async"));
    return true;
  }
  bool remove(const std::string& id, std::string&) override {
    files.erase(id);
    j_.add("remove " + id);
    return true;
  }
  void background(std::function<void()> work, std::function<void()> done) override {
    if (hold) {
      held_.emplace_back(std::move(work), std::move(done));
      return;
    }
    work();
    done();
  }
  void run_held() {
    auto h = std::move(held_);
    held_.clear();
    for (auto& [w, d] : h) w(), d();
  }
  // The state of the record on "disk", or "" when there is none.
  std::string state(const std::string& id) const {
    auto it = files.find(id);
    if (it == files.end()) return "";
    auto j = nlohmann::json::parse(it->second, nullptr, false);
    return j.is_object() && j.contains("state") && j["state"].is_string() ? j["state"].get<std::string>() : "?";
  }
  nlohmann::json record(const std::string& id) const {
    auto it = files.find(id);
    return it == files.end() ? nlohmann::json() : nlohmann::json::parse(it->second, nullptr, false);
  }

 private:
  Journal& j_;
  std::vector<std::pair<std::function<void()>, std::function<void()>>> held_;
};

// Processes that do what the test says: "start JOBID" and "signal JOBID SIG"
// in the journal; output(), exit() play the process's part.
class Processes : public JobProcesses {
 public:
  explicit Processes(Journal& j) : j_(j) {}
  // The next start fails with this error.
  bool fail_next = false;
  StartError fail_with;
  struct Proc {
    std::string id;  // the job id (JSD_JOB_ID)
    JobSpawn spec;
    JobEvents ev;
    bool out_open = true, err_open = true, exited = false, gone = false, paused = false;
  };
  std::map<int, std::shared_ptr<Proc>> procs;  // by pid
  std::vector<std::pair<int, int>> signals;    // pid, signal
  // A supervisor left by a previous run that has not listed its jobs yet:
  // when_ready() waits for list(), which reports `before` as the jobs it
  // started (id, the record kept beside) and `ended_before` as their ends.
  bool defer_ready = false;
  std::vector<std::function<void()>> ready_fns;
  std::vector<std::pair<std::string, std::string>> before;
  std::map<std::string, JobEnd> ended_before;
  void when_ready(std::function<void()> fn) override {
    if (defer_ready)
      ready_fns.push_back(std::move(fn));
    else
      fn();
  }
  void list() {
    defer_ready = false;
    for (auto& fn : std::exchange(ready_fns, {})) fn();
  }
  std::vector<std::pair<std::string, std::string>> started_before() override { return before; }
  std::unique_ptr<JobProcess> adopt(const std::string& id, JobEnd& end) override {
    auto it = ended_before.find(id);
    if (it != ended_before.end()) end = it->second;
    return nullptr;
  }

  std::unique_ptr<JobProcess> start(const JobSpawn& spec, StartError& err) override {
    std::string id;
    for (auto& e : spec.env)
      if (e.rfind("JSD_JOB_ID=", 0) == 0) id = e.substr(11);
    if (fail_next) {
      fail_next = false;
      err = fail_with;
      j_.add("cannot start " + id);
      return nullptr;
    }
    int pid = next_pid_++;
    auto p = std::make_shared<Proc>(Proc{id, spec, {}});
    procs[pid] = p;
    j_.add("start " + id);
    return std::make_unique<Handle>(pid, p);
  }
  void signal_group(int pid, int sig) override {
    signals.emplace_back(pid, sig);
    j_.add("signal " + (procs.count(pid) ? procs[pid]->id : "?") + " " + std::to_string(sig));
  }
  int pid_of(const std::string& id) const {
    for (auto& [pid, p] : procs)
      if (p->id == id) return pid;
    return 0;
  }
  size_t started() const { return procs.size(); }
  void output(const std::string& id, int fd, const std::string& bytes) {
    auto p = procs.at(pid_of(id));
    auto f = p->ev.output;
    if (!p->gone) f(fd, bytes);
  }
  void close_output(const std::string& id) { close(procs.at(pid_of(id))); }
  // What a job's directory keeps of its stdout (by id), for kept_output.
  std::map<std::string, std::string> kept;
  KeptOutput kept_output(const std::string& id, int fd, uint64_t from) override {
    auto it = kept.find(id);
    if (fd != 1 || it == kept.end()) return KeptOutput{{}, from, from};
    uint64_t end = it->second.size(), first = std::min(from, end);
    return KeptOutput{it->second.substr(size_t(first)), first, end};
  }
  // The process ends; with_output: its pipes close as well.
  void exit(const std::string& id, int code, int sig = 0, bool with_output = true) {
    auto p = procs.at(pid_of(id));
    if (with_output) close(p);
    p->exited = true;
    auto f = p->ev.exited;
    if (!p->gone) f(code, sig);
  }

 private:
  static void close(const std::shared_ptr<Proc>& p) {
    for (int fd : {1, 2}) {
      bool& open = fd == 1 ? p->out_open : p->err_open;
      if (!open || p->gone) continue;
      open = false;
      auto f = p->ev.output_closed;
      f(fd);
    }
  }
  class Handle : public JobProcess {
   public:
    Handle(int pid, std::shared_ptr<Proc> p) : pid_(pid), p_(std::move(p)) {}
    ~Handle() override { p_->gone = true; }
    int pid() const override { return pid_; }
    void run(JobEvents events) override { p_->ev = std::move(events); }
    void pause_output() override { p_->paused = true; }
    void resume_output() override { p_->paused = false; }
    void close_output() override { close(p_); }

   private:
    int pid_;
    std::shared_ptr<Proc> p_;
  };
  Journal& j_;
  int next_pid_ = 100;
};

}  // namespace jsd::fake
