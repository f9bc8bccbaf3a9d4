#include "outbox.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "config.h"
#include "files.h"
#include "json_read.h"
#include "log.h"
#include "names.h"

namespace jsd {

using nlohmann::json;

bool parse_outbox_entry(std::string_view text, OutboxEntry& e, std::string& err) noexcept {
  try {
    json j;
    if (!parse_json(text, j) || !j.is_object()) {
      err = "not a JSON object";
      return false;
    }
    if (!read_string(j, "id", e.id, err, Need::kRequired) || !read_string(j, "to", e.to, err, Need::kRequired) ||
        !read_string(j, "object", e.object, err, Need::kRequired) ||
        !read_string(j, "body", e.body, err, Need::kRequired))
      return false;
    if (!valid_name(e.id)) {
      err = "\"id\" is not a valid name";
      return false;
    }
    return true;
  } catch (...) {  // out of memory: the entry is skipped, the node stays up
    return false;
  }
}

bool Outbox::open(std::string& err) { return make_dir(dir_, err); }

bool Outbox::put(const OutboxEntry& e, std::string& err) {
  if (!valid_name(e.id)) {
    err = "invalid id '" + e.id + "'";
    return false;
  }
  std::string path = dir_ + "/" + e.id + ".json";
  if (access(path.c_str(), F_OK) == 0) {
    err = "submission " + e.id + " is already in the outbox";
    return false;
  }
  json j = {{"id", e.id}, {"to", e.to}, {"object", e.object}, {"body", e.body}};
  if (!write_file_atomic(path, dump_json(j), e.sync, err)) return false;
  unlink((dir_ + "/refused/" + e.id + ".json").c_str());  // an earlier refusal of the id is history now
  return true;
}

void Outbox::refuse(const std::string& id, const std::string& record) {
  std::string dir = dir_ + "/refused", err;
  if (!valid_name(id)) return;
  // Written before the outbox entry goes: a crash in between delivers the
  // entry again and it is refused again, never lost unexplained.
  if (!make_dir(dir, err) || !write_file_atomic(dir + "/" + id + ".json", record, true, err)) {
    log_warn("cannot keep the refusal of " + id + ": " + err);
    return;
  }
  std::vector<std::pair<long long, std::string>> kept;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    struct stat st;
    if (stat((dir + "/" + name).c_str(), &st) != 0) continue;
    kept.emplace_back((long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, name);
  }
  closedir(d);
  if (kept.size() <= kRefusedKeep) return;
  std::sort(kept.begin(), kept.end());
  for (size_t i = 0; i + kRefusedKeep < kept.size(); ++i) unlink((dir + "/" + kept[i].second).c_str());
}

std::string Outbox::refusal(const std::string& id) {
  std::string text, err;
  if (!valid_name(id) || !read_file(dir_ + "/refused/" + id + ".json", text, err)) return "";
  return text;
}

void Outbox::remove(const std::string& id) {
  if (valid_name(id)) unlink((dir_ + "/" + id + ".json").c_str());
}

std::vector<OutboxEntry> Outbox::load() {
  std::vector<std::pair<long long, OutboxEntry>> found;
  DIR* d = opendir(dir_.c_str());
  if (!d) return {};
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    std::string path = dir_ + "/" + name;
    std::string text, why;
    OutboxEntry e;
    if (!read_file(path, text, why) || !parse_outbox_entry(text, e, why)) {
      log_warn("ignoring unreadable outbox entry " + path + ": " + why);
      continue;
    }
    // remove() goes by id: an entry filed under another name would be
    // delivered again at every start.
    if (name != e.id + ".json") {
      log_warn("ignoring outbox entry " + path + ": it holds submission '" + e.id + "'");
      continue;
    }
    struct stat st;
    long long t = stat(path.c_str(), &st) == 0 ? (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : 0;
    found.emplace_back(t, e);
  }
  closedir(d);
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<OutboxEntry> out;
  for (auto& [t, e] : found) out.push_back(std::move(e));
  return out;
}

}  // namespace jsd
