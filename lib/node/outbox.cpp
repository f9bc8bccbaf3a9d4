#include "outbox.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config.h"
#include "event.h"
#include "job_store.h"
#include "log.h"

namespace jsd {

using nlohmann::json;

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
  return write_file_atomic(path, dump_json(j), true, err);
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
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    auto j = json::parse(ss.str(), nullptr, false);
    OutboxEntry e;
    try {
      e.id = j.at("id");
      e.to = j.at("to");
      e.object = j.at("object");
      e.body = j.at("body");
    } catch (const json::exception&) {
      log_warn("ignoring unreadable outbox entry " + path);
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
