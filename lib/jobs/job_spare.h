// A job directory made ahead of its start (job_files.h). The node's job
// supervisor prepares the next one once it has answered a start, so that
// making the directory and its FIFOs, opening them and creating job.json
// are not between a start request and its answer (issue 19's B1 cost). A
// start writes the record into job.json and renames the directory to ID.d,
// the mark of a started id, exactly as it did with a directory made on the
// spot.
//
// Named .spare-PID-N in the jobs directory: no job's name (an id never
// starts with '.'), never listed as a job (list_job_dirs wants ".d"); the
// one a supervisor killed while it held it is removed by the next
// supervisor (remove_spares), which holds the jobs directory's lock.
#pragma once

#include <cstdint>
#include <string>

namespace jsd {

struct SpareDir {
  std::string path;  // "" once renamed into place (or never made)
  int dirfd = -1;
  int out_read = -1, out_write = -1;  // stdout.pipe: ours, non-blocking; the job's, read-write
  int err_read = -1, err_write = -1;  // stderr.pipe: the same
  int job_file = -1;                  // job.json: created empty, open for appending

  SpareDir() = default;
  SpareDir(const SpareDir&) = delete;
  SpareDir& operator=(const SpareDir&) = delete;
  ~SpareDir() { discard(); }

  // Makes it in jobs_dir; false with err, and nothing left on disk.
  bool make(const std::string& jobs_dir, std::string& err);
  // Closes what is still open and removes the directory unless it was
  // renamed into place (path cleared).
  void discard();
};

// Removes the spare directories a previous supervisor left in jobs_dir.
void remove_spares(const std::string& jobs_dir);

}  // namespace jsd
