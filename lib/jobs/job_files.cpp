#include "job_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "config.h"
#include "files.h"
#include "json_read.h"

namespace jsd {

using nlohmann::json;

std::string job_end_text(const JobEnd& e) {
  json j = {{"ended", e.ended},
            {"stdout_bytes", e.out_bytes},
            {"stderr_bytes", e.err_bytes},
            {"stdout_dropped", e.out_dropped},
            {"stderr_dropped", e.err_dropped}};
  if (!e.error.empty()) {
    j["error"] = e.error;
    j["command"] = e.command;
  } else if (e.signal > 0) {
    j["signal"] = e.signal;
  } else {
    j["exit_code"] = e.exit_code;
  }
  return dump_json(j);
}

void split_job_file(std::string_view text, std::string_view& record, std::string_view& pid, std::string_view& end) {
  record = pid = end = {};
  size_t nl = text.find('\n');
  record = text.substr(0, nl);
  if (nl == std::string_view::npos) return;
  // The lines after it: only whole ones (a newline after them) count.
  for (size_t at = nl + 1; at < text.size();) {
    size_t e = text.find('\n', at);
    if (e == std::string_view::npos) break;
    std::string_view line = text.substr(at, e - at);
    if (line.substr(0, 4) == "pid ") pid = line.substr(4);
    if (line.substr(0, 4) == "end ") end = line.substr(4);
    at = e + 1;
  }
}

namespace {
bool read_job_file(const std::string& dir, std::string& text) {
  std::string err;
  return read_file(dir + "/job.json", text, err);
}
// One write through an O_APPEND descriptor: whole, or false.
bool append_line(int fd, const std::string& line) {
  return fd >= 0 && write(fd, line.data(), line.size()) == ssize_t(line.size());
}
}  // namespace

std::string job_record_line(std::string_view record) {
  std::string line(record);
  std::replace(line.begin(), line.end(), '\n', ' ');
  return line + "\n";
}

std::string read_job_record_text(const std::string& dir) {
  std::string text;
  if (!read_job_file(dir, text)) return "";
  std::string_view rec, pid, end;
  split_job_file(text, rec, pid, end);
  return std::string(rec);
}

bool append_job_end(int fd, std::string_view end_text) {
  std::string line(end_text);
  std::replace(line.begin(), line.end(), '\n', ' ');
  // A newline first: a job.json an older supervisor wrote has none after
  // its record (an empty line is skipped).
  return append_line(fd, "\nend " + line + "\n");
}

bool read_job_end(const std::string& dir, JobEnd& e) {
  std::string text, err;
  if (read_job_file(dir, text)) {
    std::string_view rec, pid, end;
    split_job_file(text, rec, pid, end);
    if (!end.empty()) return parse_job_end_text(end, e);
  }
  return read_file(dir + "/end.json", text, err) && parse_job_end_text(text, e);
}

bool parse_job_end_text(std::string_view text, JobEnd& e) {
  std::string err;
  json j;
  if (!parse_json(text, j) || !j.is_object()) return false;
  int64_t code = -1, sig = 0, ob = 0, eb = 0, od = 0, ed = 0;
  bool ok = read_number(j, "ended", 0, 1e12, e.ended, err) && read_int(j, "exit_code", -1, 255, code, err) &&
            read_int(j, "signal", 0, 127, sig, err) && read_string(j, "error", e.error, err) &&
            read_bool(j, "command", e.command, err) && read_int(j, "stdout_bytes", 0, INT64_MAX, ob, err) &&
            read_int(j, "stderr_bytes", 0, INT64_MAX, eb, err) &&
            read_int(j, "stdout_dropped", 0, INT64_MAX, od, err) &&
            read_int(j, "stderr_dropped", 0, INT64_MAX, ed, err);
  if (!ok) return false;
  e.exit_code = int(code);
  e.signal = int(sig);
  e.out_bytes = uint64_t(ob);
  e.err_bytes = uint64_t(eb);
  e.out_dropped = uint64_t(od);
  e.err_dropped = uint64_t(ed);
  e.known = true;
  return true;
}

namespace {
// The segments of one stream, by offset.
std::vector<std::pair<uint64_t, std::string>> segments(const std::string& dir, int fd) {
  std::string prefix = fd == 1 ? "stdout." : "stderr.";
  std::vector<std::pair<uint64_t, std::string>> segs;
  DIR* d = opendir(dir.c_str());
  if (!d) return segs;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) continue;
    std::string num = name.substr(prefix.size());
    if (num.find_first_not_of("0123456789") != std::string::npos || num.size() > 19) continue;
    segs.emplace_back(std::stoull(num), name);
  }
  closedir(d);
  std::sort(segs.begin(), segs.end());
  return segs;
}
}  // namespace

KeptOutput read_kept_output(const std::string& dir, int fd, uint64_t from) {
  // A segment may be dropped between listing and reading it: then list again.
  for (int attempt = 0; attempt < 5; ++attempt) {
    KeptOutput k;
    auto segs = segments(dir, fd);
    if (segs.empty()) {
      k.first = k.end = from;
      return k;
    }
    k.first = std::max(from, segs.front().first);
    k.end = segs.front().first;
    bool vanished = false;
    for (auto& [off, name] : segs) {
      std::string text, err;
      if (!read_file(dir + "/" + name, text, err)) {
        vanished = true;
        break;
      }
      uint64_t seg_end = off + text.size();
      if (off != k.end) {  // a gap: only what follows it counts
        k.data.clear();
        k.first = std::max(from, off);
      }
      if (seg_end > k.first) k.data.append(text, size_t(k.first > off ? k.first - off : 0));
      k.end = seg_end;
    }
    if (!vanished) {
      if (k.end < k.first) k.first = k.end;
      return k;
    }
  }
  return KeptOutput{{}, from, from};
}

std::vector<std::pair<uint64_t, uint64_t>> kept_segments(const std::string& dir, int fd) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (auto& [off, name] : segments(dir, fd)) {
    struct stat st;
    if (stat((dir + "/" + name).c_str(), &st) == 0) out.emplace_back(off, uint64_t(st.st_size));
  }
  return out;
}

uint64_t kept_end(const std::string& dir, int fd) {
  auto segs = kept_segments(dir, fd);
  return segs.empty() ? 0 : segs.back().first + segs.back().second;
}

bool write_job_pid(int fd, int pid, uint64_t start_ticks) {
  // Not synced: after a power cut no job runs any more. One line, counted
  // once whole (split_job_file).
  return append_line(fd, "\npid " + std::to_string(pid) + " " + std::to_string(start_ticks) + "\n");
}

bool read_job_pid(const std::string& dir, int& pid, uint64_t& start_ticks) {
  std::string text, err;
  if (read_job_file(dir, text)) {
    std::string_view rec, line, end;
    split_job_file(text, rec, line, end);
    text = line;
  } else {
    text.clear();
  }
  // A job an older supervisor started: its pid file.
  if (text.empty() && !read_file(dir + "/pid", text, err)) return false;
  unsigned long long p = 0, t = 0;
  if (sscanf(text.c_str(), "%llu %llu", &p, &t) != 2 || p == 0 || p > 1u << 22) return false;
  pid = int(p);
  start_ticks = t;
  return true;
}

uint64_t process_start_ticks(int pid) {
  std::string text, err;
  if (!read_file("/proc/" + std::to_string(pid) + "/stat", text, err)) return 0;
  // The command name (field 2) may hold spaces and parentheses: count from
  // the last ')'.
  size_t at = text.rfind(')');
  if (at == std::string::npos) return 0;
  const char* p = text.c_str() + at + 1;
  char state = 0;
  unsigned long long v = 0;
  // Fields 3 (state) to 22 (starttime).
  if (sscanf(p, " %c", &state) != 1 || state == 'Z' || state == 'X') return 0;
  for (int field = 3; field < 22; ++field) {
    p = strchr(p + 1, ' ');
    if (!p) return 0;
  }
  if (sscanf(p, " %llu", &v) != 1) return 0;
  return v;
}

bool job_process_lives(const std::string& dir, int& pid) {
  uint64_t ticks = 0;
  if (!read_job_pid(dir, pid, ticks)) return false;
  uint64_t now = process_start_ticks(pid);
  return now != 0 && now == ticks;
}

void remove_job_dir(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* de = readdir(d)) {
      std::string name = de->d_name;
      if (name != "." && name != "..") unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
  rmdir(dir.c_str());
}

std::vector<std::string> list_job_dirs(const std::string& jobs_dir) {
  std::vector<std::string> ids;
  DIR* d = opendir(jobs_dir.c_str());
  if (!d) return ids;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name.size() > 2 && name.substr(name.size() - 2) == ".d") ids.push_back(name.substr(0, name.size() - 2));
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string unix_socket_path(const std::string& path, int& dirfd) {
  dirfd = -1;
  if (path.size() < sizeof(sockaddr_un::sun_path)) return path;
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  dirfd = open(path.substr(0, slash).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) return "";
  std::string p = "/proc/self/fd/" + std::to_string(dirfd) + path.substr(slash);
  if (p.size() >= sizeof(sockaddr_un::sun_path)) {
    close(dirfd);
    dirfd = -1;
    return "";
  }
  return p;
}

}  // namespace jsd
