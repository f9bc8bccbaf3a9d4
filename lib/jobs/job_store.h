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

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "job_io.h"
#include "job_record.h"

namespace jsd {

// Writes that need not be durable run in the disk's background (libuv's
// thread pool for the real one). Writes of one record are serialised, the
// newest version last.
class JobStore {
 public:
  JobStore(RecordDisk& disk, size_t keep, double max_age_s) : disk_(disk), keep_(keep), max_age_(max_age_s) {}
  // Waits for the writes under way in the background: they use this store
  // and its disk, and a listener that stops its loop (uv_stop) and goes
  // would otherwise leave a thread writing through freed memory.
  ~JobStore();
  // Loads every record; one that is not valid is left alone with one log line.
  bool open(std::string& err);
  JobRecord* find(const std::string& id);
  JobRecord& add(const JobRecord& r);
  // Drops a record that was never answered for (its durable write failed):
  // the id is free again, as if it had never arrived.
  void forget(const std::string& id);
  // sync: written and fsync'd before returning. Otherwise in the background.
  bool save(const JobRecord& r, bool sync, std::string& err);
  // A write that failed (a full or read-only disk) is tried again, with
  // the record as it is then, each time retry_failed() runs; the node calls
  // it on a timer while failed() is not empty. on_write_failed: each
  // failure (first one logged per record, the retries quietly).
  const std::set<std::string>& failed() const { return failed_; }
  void retry_failed();
  std::function<void()> on_write_failed;
  // Applies the pruning rule; returns how many records went.
  size_t prune(double now);
  std::map<std::string, JobRecord>& all() { return recs_; }

 private:
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
  void landed(Work& w);
  void write_result(const std::string& id, const std::string& err);
  std::set<std::string> failed_;  // loop thread: ids whose last write failed
  RecordDisk& disk_;
  std::mutex flight_mu_;  // guards in_flight_
  std::condition_variable flight_cv_;
  size_t in_flight_ = 0;                                          // background writes not yet done
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);    // false once destroyed: a late landed() is dropped
  std::map<std::string, std::pair<bool, std::vector<Op>>> busy_;  // id -> in flight, waiting ops
  size_t keep_;
  double max_age_;
  std::map<std::string, JobRecord> recs_;
};

// The real RecordDisk: DIR/ID.json files; the background is libuv's thread
// pool when there is a loop.
class FileRecordDisk : public RecordDisk {
 public:
  FileRecordDisk(uv_loop_t* loop, std::string dir) : loop_(loop), dir_(std::move(dir)) {}
  bool load_all(std::vector<File>& files, std::string& err) override;
  bool write(const std::string& id, const std::string& text, bool sync, std::string& err) override;
  bool remove(const std::string& id, std::string& err) override;
  void background(std::function<void()> work, std::function<void()> done) override;

 private:
  std::string path(const std::string& id) const { return dir_ + "/" + id + ".json"; }
  uv_loop_t* loop_;
  std::string dir_;
};

}  // namespace jsd
