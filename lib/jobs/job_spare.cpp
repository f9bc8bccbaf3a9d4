// A job directory made ahead of its start (job_spare.h).
#include "job_spare.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "job_files.h"

namespace jsd {

namespace {
constexpr const char* kPrefix = ".spare-";
}  // namespace

bool SpareDir::make(const std::string& jobs_dir, std::string& err) {
  discard();
  static uint64_t next = 0;  // the supervisor is one thread
  std::string p = jobs_dir + "/" + kPrefix + std::to_string(getpid()) + "-" + std::to_string(++next);
  bool made = mkdir(p.c_str(), 0700) == 0;
  if (!made && errno == EEXIST) {  // a name this pid had in an earlier life
    remove_job_dir(p);
    made = mkdir(p.c_str(), 0700) == 0;
  }
  if (!made) {
    err = "cannot create " + p + ": " + strerror(errno);
    return false;
  }
  path = p;
  dirfd = open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  // The job's stdout and stderr (job_files.h): FIFOs, found by name by
  // the next supervisor if this one dies. Our read ends first (a FIFO
  // opened for reading alone, non-blocking, does not wait for a writer),
  // then the job's ends, read-write: the job itself keeps a reader, so its
  // writes never raise SIGPIPE, whoever of jsd dies.
  const char* fail = nullptr;
  std::string what = p;
  if (dirfd < 0) fail = "cannot open";
  for (int k : {1, 2}) {
    if (fail) break;
    std::string f = job_fifo(p, k);
    int& rd = k == 1 ? out_read : err_read;
    int& wr = k == 1 ? out_write : err_write;
    what = f;
    if (mkfifo(f.c_str(), 0600) != 0)
      fail = "cannot create";
    else if ((rd = open(f.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 ||
             (wr = open(f.c_str(), O_RDWR | O_CLOEXEC)) < 0)
      fail = "cannot open";
  }
  // job.json, empty until the start writes the record into it; then the
  // pid and the end are appended (job_files.h): one file for the three,
  // no temporary file and rename.
  if (!fail) {
    what = p + "/job.json";
    job_file = openat(dirfd, "job.json", O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (job_file < 0) fail = "cannot create";
  }
  if (!fail) return true;
  err = std::string(fail) + " " + what + ": " + strerror(errno);
  discard();
  return false;
}

void SpareDir::discard() {
  for (int* fd : {&dirfd, &out_read, &out_write, &err_read, &err_write, &job_file})
    if (*fd >= 0) close(*fd), *fd = -1;
  if (!path.empty()) remove_job_dir(path);
  path.clear();
}

void remove_spares(const std::string& jobs_dir) {
  std::vector<std::string> found;
  if (DIR* d = opendir(jobs_dir.c_str())) {
    while (dirent* de = readdir(d))
      if (strncmp(de->d_name, kPrefix, strlen(kPrefix)) == 0) found.push_back(jobs_dir + "/" + de->d_name);
    closedir(d);
  }
  for (auto& p : found) remove_job_dir(p);
}

}  // namespace jsd
