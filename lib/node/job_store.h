// Job records: one JSON file per job in STATE_DIR/jobs/, written atomically
// (temporary file + rename; fsync'd for durable submissions), so a status
// query answers after the submitter is gone and after the node restarts.
// A record also remembers its submission id: a node runs an id at most once
// for as long as it keeps the record.
//
// Pruning rule: when a job ends, finished records beyond the newest
// job_records_keep, and finished records older than job_records_max_age_s,
// are deleted (also at start-up). Queued and running records are never pruned.
#pragma once

#include <uv.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace jsd {

struct JobRecord {
  std::string id, job, from;
  std::string state = "queued";   // queued running exited killed timeout cancelled failed lost
  std::vector<std::string> argv;  // ad-hoc commands only
  std::map<std::string, std::string> params;
  bool durable = false;
  int pid = 0;
  double submitted = 0, started = 0, ended = 0;
  int exit_code = -1;  // when the job exited
  int signal = 0;      // when a signal ended it
  std::string error;   // why it failed to start
  std::string stdout_tail, stderr_tail;

  bool finished() const { return state != "queued" && state != "running"; }
  // The status a submitter exits with: the code, 128+signal, 127 if it could
  // not start, 255 if unknown.
  int exit_status() const;
  nlohmann::json to_json() const;
  static bool from_json(const nlohmann::json& j, JobRecord& r);
};

constexpr size_t kTailBytes = 16 * 1024;
void append_tail(std::string& tail, std::string_view data);

// Writes that need not be durable run on libuv's thread pool: creating and
// renaming a file costs ~0.5 ms on a VM's ext4, which the event loop (and
// every other link and job of the node) would otherwise wait for. Writes of
// one record are serialised, the newest version last.
class JobStore {
 public:
  JobStore(std::string dir, size_t keep, double max_age_s) : dir_(std::move(dir)), keep_(keep), max_age_(max_age_s) {}
  void set_loop(uv_loop_t* loop) { loop_ = loop; }
  // Creates the directory and loads every record.
  bool open(std::string& err);
  JobRecord* find(const std::string& id);
  JobRecord& add(const JobRecord& r);
  // sync: written and fsync'd before returning. Otherwise queued (or done
  // at once when there is no loop).
  bool save(const JobRecord& r, bool sync, std::string& err);
  // Applies the pruning rule; returns how many records went.
  size_t prune(double now);
  std::map<std::string, JobRecord>& all() { return recs_; }

 private:
  std::string path(const std::string& id) const { return dir_ + "/" + id + ".json"; }
  struct Op {
    bool remove = false;
    std::string data;
    bool sync = false;
    uint64_t version = 0;
  };
  // Runs on either thread: writes (or removes) unless a newer version of
  // the record is already on disk, so an older write can never land last.
  bool apply(const std::string& id, const Op& op, std::string& err);
  std::map<std::string, uint64_t> version_;  // loop thread: last version handed out
  std::mutex mu_;                            // guards written_ and the files
  std::map<std::string, uint64_t> written_;
  struct Work;
  void enqueue(const std::string& id, Op op);
  void launch(const std::string& id, Op op);
  uv_loop_t* loop_ = nullptr;
  std::map<std::string, std::pair<bool, std::vector<Op>>> busy_;  // id -> in flight, waiting ops
  std::string dir_;
  size_t keep_;
  double max_age_;
  std::map<std::string, JobRecord> recs_;
};

// Writes data to path atomically: temporary file, optional fsync, rename,
// optional fsync of the directory.
bool write_file_atomic(const std::string& path, const std::string& data, bool sync, std::string& err,
                       const std::string& tmp_suffix = ".tmp");
bool make_dir(const std::string& dir, std::string& err);

}  // namespace jsd
