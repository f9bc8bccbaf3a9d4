// The job table of the node's job supervisor (job_table.h).
#include "job_table.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "files.h"
#include "job_files.h"
#include "job_spare.h"
#include "spawner.h"
#include "wire.h"

namespace jsd::supervisor_parts {

JobEnd failed_end(const std::string& why, bool command) {
  JobEnd e;
  e.known = true;
  e.error = why;
  e.command = command;
  e.ended = wall_now();
  return e;
}

void JobTable::init_streams(Job& j) const {
  j.out.fd = 1;
  j.err.fd = 2;
  for (Kept* k : {&j.out, &j.err}) {
    k->keep = keep_;
    // Four segments a stream: between 3/4 and all of keep is kept.
    k->seg_max = keep_ / 4 ? keep_ / 4 : 1;
  }
}

// The job's directory is the mark of a started id (job_files.h): made
// whole under a temporary name (a spare one made ahead: job_spare.h) and
// renamed into place just before the job is spawned, so a listener that
// finds it knows this supervisor took the job, and one that does not may
// start it (it never ran).
std::string JobTable::start(const SupStart& s) {
  auto refuse = [&](const std::string& why) { return encode_sup_end("", failed_end(why, false)); };
  if (s.id.empty() || s.id.find('/') != std::string::npos || s.id[0] == '.') return refuse("bad job id '" + s.id + "'");
  std::string dir = job_dir(jobs_dir_, s.id), err;
  std::unique_ptr<SpareDir> sp = std::move(spare_);
  if (!sp) {
    sp = std::make_unique<SpareDir>();
    if (!sp->make(jobs_dir_, err)) return refuse(err);
  }
  want_spare_ = true;
  // No temporary file and rename for job.json: the whole directory is
  // renamed into place once it is complete. The spare made it empty.
  std::string line = job_record_line(s.record);
  if (write(sp->job_file, line.data(), line.size()) != ssize_t(line.size()))
    return refuse("cannot write " + sp->path + "/job.json: " + strerror(errno));  // sp goes
  // stdin.pipe: only for a job with input (jsd-submit -i).
  if (s.input && mkfifoat(sp->dirfd, "stdin.pipe", 0600) != 0)
    return refuse("cannot create " + job_fifo(sp->path, 0) + ": " + strerror(errno));
  if (rename(sp->path.c_str(), dir.c_str()) != 0) {
    int e = errno;
    return refuse(e == EEXIST || e == ENOTEMPTY ? "job " + s.id + " was started here before"
                                                : "cannot create " + dir + ": " + strerror(e));
  }
  sp->path.clear();  // it is the job's now
  auto j = std::make_unique<Job>();
  j->id = s.id;
  j->dir = dir;
  init_streams(*j);
  j->dirfd = std::exchange(sp->dirfd, -1);
  bool command = false;
  if (spawn(*j, s, *sp, err, command)) {
    std::string m(1, char(SupMsg::started));
    WireWriter(m, 4).u32(uint32_t(j->pid));
    // Found again by whoever comes after us (job_files.h).
    if (!write_job_pid(sp->job_file, j->pid, process_start_ticks(j->pid)))
      fprintf(stderr, "jsd-job: error: cannot write the pid to %s/job.json: %s\n", dir.c_str(), strerror(errno));
    by_pid_[j->pid] = j.get();
    jobs_[s.id] = std::move(j);
    return m;
  }
  // How it did not start is on disk too: a restarted listener that finds
  // the directory reads it there.
  JobEnd e = failed_end(err, command);
  if (append_job_end(sp->job_file, job_end_text(e)))
    fsync(sp->job_file), fsync(j->dirfd);
  else
    fprintf(stderr, "jsd-job: error: cannot write the end to %s/job.json: %s\n", dir.c_str(), strerror(errno));
  close(j->dirfd);
  return encode_sup_end("", e);
}

void JobTable::prepare_spare() {
  if (!want_spare_ || spare_) return;
  want_spare_ = false;
  auto sp = std::make_unique<SpareDir>();
  std::string err;
  // Failing here costs nothing: the next start makes its own (and says why
  // it cannot).
  if (sp->make(jobs_dir_, err)) spare_ = std::move(sp);
}

bool JobTable::spawn(Job& j, const SupStart& s, SpareDir& sp, std::string& err, bool& command) {
  // The FIFOs' ends the spare opened (job_spare.cpp): ours to read, the
  // job's read-write.
  int out[2] = {std::exchange(sp.out_read, -1), std::exchange(sp.out_write, -1)};
  int er[2] = {std::exchange(sp.err_read, -1), std::exchange(sp.err_write, -1)};
  auto close_all = [&] {
    for (int fd : {out[0], out[1], er[0], er[1]})
      if (fd >= 0) close(fd);
  };
  if (s.argv.empty()) {
    command = true;
    err = "empty command";
    close_all();
    return false;
  }
  // A job starts clean (spawner.h): descriptors 0-2 and nothing else
  // (stdin /dev/null or its stdin FIFO, stdout and stderr its FIFOs), its own session (its
  // process group is signalled as one, and is not ours), no blocked
  // signals, default dispositions; its program looked up in its own PATH,
  // as execvp would (the supervisor's environment is not the job's).
  // Its input: a FIFO of which we hold a write end (so the job's open
  // does not wait for a writer, and it sees the end only once the input
  // is complete: input_done), or /dev/null.
  int in = -1, in_rd = -1;
  if (s.input) {
    std::string f = job_fifo(j.dir, 0);
    in = open(f.c_str(), O_RDWR | O_CLOEXEC);
    if (in >= 0) in_rd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (in_rd < 0) {
      err = f + ": " + strerror(errno);
      if (in >= 0) close(in);
      close_all();
      return false;
    }
  }
  ProcessSpec ps;
  ps.file = s.argv[0];
  ps.argv = s.argv;
  ps.env = &s.env;
  ps.cwd = s.cwd;
  ps.fds = {in_rd, out[1], er[1]};
  ps.new_session = true;
  pid_t pid = -1;
  int rc = spawn_process(ps, pid);
  close(out[1]);
  close(er[1]);
  if (in_rd >= 0) close(in_rd);
  if (rc != 0 && in >= 0) close(in);
  j.input = rc == 0 ? in : -1;
  if (rc != 0) {
    close(out[0]);
    close(er[0]);
    // The system's limits are jsd's failure; anything else (no such
    // program, not executable, a cwd gone) is the command's.
    command = !(rc == EAGAIN || rc == ENOMEM || rc == EMFILE || rc == ENFILE || rc == ENOSYS);
    err = s.argv[0] + ": " + strerror(rc);
    return false;
  }
  j.pid = pid;
  j.out.pipe = out[0];
  j.err.pipe = er[0];
  return true;
}

// A job a supervisor that died started: it runs on (its own session);
// its output waits in its FIFOs, its directory says how much was kept.
void JobTable::adopt(std::string_view idv, int pid, bool listener_reaps) {
  std::string id(idv);
  if (id.empty() || jobs_.count(id) || id.find('/') != std::string::npos || id[0] == '.') return;
  auto j = std::make_unique<Job>();
  j->id = id;
  j->dir = job_dir(jobs_dir_, id);
  j->pid = pid;
  j->adopted = true;
  j->dirfd = open(j->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j->dirfd < 0) return;
  init_streams(*j);
  for (Kept* k : {&j->out, &j->err}) {
    // On from the end on disk, in a new segment; the old ones count
    // against keep as before.
    for (auto& [off, size] : kept_segments(j->dir, k->fd)) k->segs.emplace_back(off, size);
    k->total = k->segs.empty() ? 0 : k->segs.back().first + k->segs.back().second;
    k->pipe = open(job_fifo(j->dir, k->fd).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  }
  if (listener_reaps) {
    j->await_status = true;
  } else {
    j->pidfd = int(syscall(SYS_pidfd_open, pid, 0));
    if (j->pidfd < 0) mark_ended(*j), j->status_unknown = true;
  }
  jobs_[id] = std::move(j);
}

void JobTable::reaped(std::string_view id, int code, int sig) {
  auto it = jobs_.find(std::string(id));
  if (it == jobs_.end() || !it->second->adopted || it->second->reaped) return;
  Job& j = *it->second;
  j.status_unknown = code < 0 && sig == 0;
  j.status = sig ? sig : (code & 0xff) << 8;  // as waitpid says it
  mark_ended(j);
}

void JobTable::signal(std::string_view id, int sig) {
  auto it = jobs_.find(std::string(id));
  if (it != jobs_.end() && !it->second->reaped) ::kill(-it->second->pid, sig);
}

void JobTable::pause(std::string_view id, bool paused) {
  auto it = jobs_.find(std::string(id));
  if (it != jobs_.end()) it->second->paused = paused;
}

void JobTable::input_done(std::string_view id) {
  auto it = jobs_.find(std::string(id));
  if (it != jobs_.end() && it->second->input >= 0) close(it->second->input), it->second->input = -1;
}

void JobTable::listener_gone() {
  for (auto& [id, j] : jobs_) {
    // Its input can never be complete now (the listener held the rest):
    // it must not read a truncated stream as if it were all.
    if (j->input >= 0) {
      close(j->input), j->input = -1;
      if (!j->reaped) ::kill(-j->pid, SIGKILL);
      fprintf(stderr, "jsd-job: job %s: its input was cut (the listener went away mid-input): killed\n", id.c_str());
    }
    if (!j->await_status) continue;
    j->await_status = false;
    j->pidfd = int(syscall(SYS_pidfd_open, j->pid, 0));
    if (j->pidfd < 0) {
      mark_ended(*j);
      j->status_unknown = true;
    }
  }
}

std::vector<SupJob> JobTable::list_for_new_listener() {
  std::vector<SupJob> list;
  for (auto& [id, j] : jobs_) list.push_back({id, j->pid, j->out.total, j->err.total});
  for (auto& [id, j] : jobs_) j->paused = false;
  return list;
}

void JobTable::pidfd_ended(Job& j) {
  mark_ended(j);
  j.status_unknown = true;
}

void JobTable::mark_ended(Job& j) {
  if (j.pidfd >= 0) close(j.pidfd), j.pidfd = -1;
  j.reaped = true;
  j.await_status = false;
  j.ended = wall_now();
  j.drain_until = mono_ms() + kDrainMs;
}

void JobTable::read_pipe(Job& j, Kept& k, Conn* ev) {
  char buf[65536];
  ssize_t n = read(k.pipe, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close(k.pipe);
    k.pipe = -1;
    return;
  }
  k.append(j.dirfd, buf, size_t(n));
  if (ev) ev->queue(encode_sup_output(j.id, k.fd, std::string_view(buf, size_t(n))));
}

void JobTable::reap() {
  for (;;) {
    int st = 0;
    pid_t got = waitpid(-1, &st, WNOHANG);
    if (got <= 0) return;
    auto it = by_pid_.find(got);
    if (it == by_pid_.end()) continue;
    Job& j = *it->second;
    by_pid_.erase(it);
    j.reaped = true;
    j.status = st;
    j.ended = wall_now();
    j.drain_until = mono_ms() + kDrainMs;
  }
}

// The end goes to the listener first (it answers at once), then to disk
// durably; only then is the job forgotten (a listener that connects
// later reads the end in job.json instead).
void JobTable::finish(Job& j, std::unique_ptr<Conn>& ev) {
  // A background process that keeps the pipes open is not the job.
  JobEnd e;
  e.known = true;
  e.ended = j.ended;
  if (j.status_unknown)
    e.exit_code = -1;  // it ended; nobody could say how
  else if (WIFSIGNALED(j.status))
    e.signal = WTERMSIG(j.status);
  else
    e.exit_code = WEXITSTATUS(j.status);
  e.out_bytes = j.out.total;
  e.err_bytes = j.err.total;
  e.out_dropped = j.out.dropped();
  e.err_dropped = j.err.dropped();
  j.out.close_all();
  j.err.close_all();
  // One text for the listener and the disk.
  std::string text = job_end_text(e), err;
  if (ev) {
    ev->queue(encode_sup_end_text(j.id, text));
    if (!ev->flush()) ev.reset();
  }
  // Appended to job.json (job_files.h): no file to create, no rename; the
  // syncer makes it durable with its directory, as it did end.json.
  std::string path = j.dir + "/job.json";
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd >= 0 && append_job_end(fd, text))
    syncer_.push(path);
  else if (write_file_atomic(j.dir + "/end.json", text, false, err))  // no job.json to append to
    syncer_.push(j.dir + "/end.json");
  else
    fprintf(stderr, "jsd-job: error: %s\n", err.c_str());
  if (fd >= 0) close(fd);
  close(j.dirfd);
}

void JobTable::finish_ended(int64_t now, std::unique_ptr<Conn>& ev) {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& j = *it->second;
    bool done = j.reaped && ((j.out.pipe < 0 && j.err.pipe < 0) || now >= j.drain_until);
    if (!done) {
      ++it;
      continue;
    }
    if (j.input >= 0) close(j.input), j.input = -1;
    finish(j, ev);
    it = jobs_.erase(it);
  }
}

}  // namespace jsd::supervisor_parts
