#include "job_store.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "config.h"
#include "files.h"
#include "job_files.h"
#include "log.h"

namespace jsd {

bool JobStore::open(std::string& err) {
  std::vector<RecordDisk::File> files;
  if (!disk_.load_all(files, err)) return false;
  for (auto& f : files) {
    JobRecord r;
    std::string why;
    if (!parse_job_record(f.text, r, why)) {
      log_warn("ignoring unreadable job record " + f.where + ": " + why);
      continue;
    }
    if (r.id != f.id) {
      log_warn("ignoring unreadable job record " + f.where + ": its id is " + r.id);
      continue;
    }
    recs_[r.id] = std::move(r);
  }
  return true;
}

JobRecord* JobStore::find(const std::string& id) {
  auto it = recs_.find(id);
  return it == recs_.end() ? nullptr : &it->second;
}

JobRecord& JobStore::add(const JobRecord& r) { return recs_[r.id] = r; }

void JobStore::forget(const std::string& id) {
  recs_.erase(id);
  failed_.erase(id);
}

void JobStore::retry_failed() {
  std::set<std::string> ids;
  ids.swap(failed_);
  for (auto& id : ids)
    if (auto it = recs_.find(id); it != recs_.end()) {
      failed_.insert(id);  // still failing until a write lands: no second log line
      enqueue(id, Op{false, dump_json(it->second.to_json()), false, ++version_[id]});
    }
}

// A record's write landed (err empty) or failed: the first failure is
// logged, a later success after failures too, so that a full disk is one
// line per record, not one per retry.
void JobStore::write_result(const std::string& id, const std::string& err) {
  bool was_failing = failed_.count(id) > 0;
  if (err.empty()) {
    if (was_failing) log_info("job record " + id + " written at last");
    failed_.erase(id);
    return;
  }
  if (!was_failing) log_error("job record " + id + ": " + err);
  failed_.insert(id);
  if (on_write_failed) on_write_failed();
}

struct JobStore::Work {
  std::string id;
  Op op;
  std::string err;
};

bool JobStore::save(const JobRecord& r, bool sync, std::string& err) {
  // (A durable record is always written synchronously, so it never has a
  // queued write that could land after this one.)
  Op op{false, dump_json(r.to_json()), sync, ++version_[r.id]};
  if (sync) {
    bool ok = apply(r.id, op, err);
    write_result(r.id, ok ? std::string() : err);
    return ok;
  }
  enqueue(r.id, std::move(op));
  return true;
}

bool JobStore::apply(const std::string& id, const Op& op, std::string& err) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t& on_disk = written_[id];
  if (on_disk >= op.version) return true;  // a newer version got there first
  bool ok = op.remove ? disk_.remove(id, err) : disk_.write(id, op.data, op.sync, err);
  on_disk = op.version;
  return ok;
}

void JobStore::enqueue(const std::string& id, Op op) {
  auto it = busy_.find(id);
  if (it != busy_.end()) {
    // Only the newest version matters; a removal cancels earlier writes.
    it->second.second.clear();
    it->second.second.push_back(std::move(op));
    return;
  }
  busy_[id] = {true, {}};
  launch(id, std::move(op));
}

void JobStore::launch(const std::string& id, Op op) {
  auto w = std::make_shared<Work>(Work{id, std::move(op), {}});
  {
    std::lock_guard<std::mutex> lock(flight_mu_);
    ++in_flight_;
  }
  disk_.background(
      [this, w] {
        apply(w->id, w->op, w->err);
        std::lock_guard<std::mutex> lock(flight_mu_);
        if (--in_flight_ == 0) flight_cv_.notify_all();
      },
      [this, w, alive = alive_] {
        if (*alive) landed(*w);
      });
}

JobStore::~JobStore() {
  std::unique_lock<std::mutex> lock(flight_mu_);
  flight_cv_.wait(lock, [this] { return in_flight_ == 0; });
  *alive_ = false;
}

// On the loop thread, once a background write is done: the next one of the
// same record, if any.
void JobStore::landed(Work& w) {
  auto it = busy_.find(w.id);
  // Only the newest version's fate counts: a newer one is about to be tried.
  bool newest = it == busy_.end() || it->second.second.empty();
  if (newest && !w.op.remove) write_result(w.id, w.err);
  if (!w.err.empty() && w.op.remove) log_error("job record " + w.id + ": " + w.err);
  if (it != busy_.end() && !it->second.second.empty()) {
    Op next = std::move(it->second.second.back());
    it->second.second.clear();
    launch(w.id, std::move(next));
  } else if (it != busy_.end()) {
    busy_.erase(it);
    if (w.op.remove) {  // gone for good: forget its versions too
      version_.erase(w.id);
      std::lock_guard<std::mutex> lock(mu_);
      written_.erase(w.id);
    }
  }
}

size_t JobStore::prune(double now) {
  std::vector<std::pair<double, std::string>> done;
  for (auto& [id, r] : recs_)
    if (r.finished()) done.emplace_back(r.ended > 0 ? r.ended : r.submitted, id);
  std::sort(done.begin(), done.end(), std::greater<>());  // newest first
  size_t removed = 0;
  for (size_t i = 0; i < done.size(); ++i) {
    if (i < keep_ && now - done[i].first <= max_age_) continue;
    enqueue(done[i].second, Op{true, {}, false, ++version_[done[i].second]});
    recs_.erase(done[i].second);
    ++removed;
  }
  return removed;
}

bool FileRecordDisk::load_all(std::vector<File>& files, std::string& err) {
  if (!make_dir(dir_, err)) return false;
  DIR* d = opendir(dir_.c_str());
  if (!d) {
    err = "cannot read " + dir_ + ": " + strerror(errno);
    return false;
  }
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    File f{name.substr(0, name.size() - 5), dir_ + "/" + name, {}};
    std::string why;
    if (!read_file(f.where, f.text, why)) {
      log_warn("ignoring unreadable job record " + f.where + ": " + why);
      continue;
    }
    files.push_back(std::move(f));
  }
  closedir(d);
  return true;
}

bool FileRecordDisk::write(const std::string& id, const std::string& text, bool sync, std::string& err) {
  return write_file_atomic(path(id), text, sync, err);
}

bool FileRecordDisk::remove(const std::string& id, std::string& err) {
  // The job's directory (its kept output) goes with its record; the
  // record last, so a crash in between leaves it to be pruned again.
  remove_job_dir(job_dir(dir_, id));
  if (unlink(path(id).c_str()) != 0 && errno != ENOENT) {
    err = "cannot remove " + path(id) + ": " + strerror(errno);
    return false;
  }
  return true;
}

namespace {
struct Background {
  uv_work_t req;
  std::function<void()> work, done;
};
}  // namespace

void FileRecordDisk::background(std::function<void()> work, std::function<void()> done) {
  if (loop_) {
    auto* b = new Background{{}, std::move(work), std::move(done)};
    b->req.data = b;
    int rc = uv_queue_work(
        loop_, &b->req, [](uv_work_t* req) { static_cast<Background*>(req->data)->work(); },
        [](uv_work_t* req, int) {
          std::unique_ptr<Background> bg(static_cast<Background*>(req->data));
          bg->done();
        });
    if (rc == 0) return;
    // No thread pool: do it here.
    work = std::move(b->work);
    done = std::move(b->done);
    delete b;
  }
  work();
  done();
}

}  // namespace jsd
