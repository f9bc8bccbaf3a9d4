#include "job_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config.h"
#include "event.h"
#include "log.h"

namespace jsd {

using nlohmann::json;

int JobRecord::exit_status() const {
  if (state == "failed") return 127;
  if (signal > 0) return 128 + signal;
  if (exit_code >= 0) return exit_code & 0xff;
  return 255;
}

json JobRecord::to_json() const {
  json j = {{"id", id},
            {"job", job},
            {"from", from},
            {"state", state},
            {"pid", pid},
            {"submitted", submitted},
            {"started", started},
            {"ended", ended},
            {"durable", durable},
            {"params", params},
            {"stdout_tail", stdout_tail},
            {"stderr_tail", stderr_tail}};
  if (!argv.empty()) j["argv"] = argv;
  if (exit_code >= 0) j["exit_code"] = exit_code;
  if (signal > 0) j["signal"] = signal;
  if (!error.empty()) j["error"] = error;
  if (finished()) j["exit_status"] = exit_status();
  if (started > 0 && ended > 0) j["duration_s"] = ended - started;
  return j;
}

bool JobRecord::from_json(const json& j, JobRecord& r) {
  try {
    r.id = j.at("id").get<std::string>();
    r.job = j.at("job").get<std::string>();
    r.from = j.at("from").get<std::string>();
    r.state = j.at("state").get<std::string>();
    r.pid = j.value("pid", 0);
    r.submitted = j.value("submitted", 0.0);
    r.started = j.value("started", 0.0);
    r.ended = j.value("ended", 0.0);
    r.durable = j.value("durable", false);
    r.params = j.value("params", std::map<std::string, std::string>{});
    r.argv = j.value("argv", std::vector<std::string>{});
    r.exit_code = j.value("exit_code", -1);
    r.signal = j.value("signal", 0);
    r.error = j.value("error", "");
    r.stdout_tail = j.value("stdout_tail", "");
    r.stderr_tail = j.value("stderr_tail", "");
    return valid_name(r.id);
  } catch (const json::exception&) {
    return false;
  }
}

void append_tail(std::string& tail, std::string_view data) {
  if (data.size() >= kTailBytes) {
    tail.assign(data.substr(data.size() - kTailBytes));
    return;
  }
  tail.append(data);
  if (tail.size() > kTailBytes) tail.erase(0, tail.size() - kTailBytes);
}

bool make_dir(const std::string& dir, std::string& err) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string cur = dir.substr(0, i);
      if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
        err = "cannot create " + cur + ": " + strerror(errno);
        return false;
      }
    }
  }
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& data, bool sync, std::string& err,
                       const std::string& tmp_suffix) {
  std::string tmp = path + tmp_suffix;
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    err = "cannot write " + tmp + ": " + strerror(errno);
    return false;
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = "cannot write " + tmp + ": " + strerror(errno);
      close(fd);
      unlink(tmp.c_str());
      return false;
    }
    off += size_t(n);
  }
  if ((sync && fsync(fd) != 0) || close(fd) != 0) {
    err = "cannot write " + tmp + ": " + strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    err = "cannot rename " + tmp + ": " + strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  if (sync) {
    // The rename itself must survive a crash too.
    std::string dir = path.substr(0, path.rfind('/'));
    int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  return true;
}

bool JobStore::open(std::string& err) {
  if (!make_dir(dir_, err)) return false;
  DIR* d = opendir(dir_.c_str());
  if (!d) {
    err = "cannot read " + dir_ + ": " + strerror(errno);
    return false;
  }
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    std::ifstream f(dir_ + "/" + name);
    std::stringstream ss;
    ss << f.rdbuf();
    auto j = json::parse(ss.str(), nullptr, false);
    JobRecord r;
    if (j.is_discarded() || !JobRecord::from_json(j, r) || r.id + ".json" != name) {
      log_warn("ignoring unreadable job record " + dir_ + "/" + name);
      continue;
    }
    recs_[r.id] = r;
  }
  closedir(d);
  return true;
}

JobRecord* JobStore::find(const std::string& id) {
  auto it = recs_.find(id);
  return it == recs_.end() ? nullptr : &it->second;
}

JobRecord& JobStore::add(const JobRecord& r) { return recs_[r.id] = r; }

struct JobStore::Work {
  uv_work_t req;
  JobStore* store;
  std::string id, path;
  Op op;
  std::string err;
};

bool JobStore::save(const JobRecord& r, bool sync, std::string& err) {
  // (A durable record is always written synchronously, so it never has a
  // queued write that could land after this one.)
  Op op{false, dump_json(r.to_json()), sync, ++version_[r.id]};
  if (sync || !loop_) return apply(r.id, op, err);
  enqueue(r.id, std::move(op));
  return true;
}

bool JobStore::apply(const std::string& id, const Op& op, std::string& err) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t& on_disk = written_[id];
  if (on_disk >= op.version) return true;  // a newer version got there first
  bool ok = true;
  if (op.remove) {
    if (unlink(path(id).c_str()) != 0 && errno != ENOENT) {
      err = "cannot remove " + path(id) + ": " + strerror(errno);
      ok = false;
    }
  } else {
    ok = write_file_atomic(path(id), op.data, op.sync, err, "." + std::to_string(op.version) + ".tmp");
  }
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
  auto* w = new Work{{}, this, id, path(id), std::move(op), {}};
  w->req.data = w;
  int rc = uv_queue_work(
      loop_, &w->req,
      [](uv_work_t* req) {
        auto* work = static_cast<Work*>(req->data);
        work->store->apply(work->id, work->op, work->err);
      },
      [](uv_work_t* req, int) {
        auto* work = static_cast<Work*>(req->data);
        JobStore* st = work->store;
        if (!work->err.empty()) log_error("job record " + work->id + ": " + work->err);
        auto it = st->busy_.find(work->id);
        if (it != st->busy_.end() && !it->second.second.empty()) {
          Op next = std::move(it->second.second.back());
          it->second.second.clear();
          st->launch(work->id, std::move(next));
        } else if (it != st->busy_.end()) {
          st->busy_.erase(it);
          if (work->op.remove) {  // gone for good: forget its versions too
            st->version_.erase(work->id);
            std::lock_guard<std::mutex> lock(st->mu_);
            st->written_.erase(work->id);
          }
        }
        delete work;
      });
  if (rc != 0) {
    // No thread pool: do it here.
    apply(id, w->op, w->err);
    busy_.erase(id);
    delete w;
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
    Op rm{true, {}, false, ++version_[done[i].second]};
    std::string err;
    if (loop_)
      enqueue(done[i].second, std::move(rm));
    else
      apply(done[i].second, rm, err);
    recs_.erase(done[i].second);
    ++removed;
  }
  return removed;
}

}  // namespace jsd
