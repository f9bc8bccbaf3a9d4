#include "safe_path.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace jsd {

bool PathOwners::may_own(uid_t u, bool below_shared) const {
  if (std::find(firm.begin(), firm.end(), u) != firm.end()) return true;
  return !below_shared && std::find(learnt.begin(), learnt.end(), u) != learnt.end();
}

std::string PathOwners::names() const {
  std::vector<uid_t> all;
  for (auto* v : {&firm, &learnt})
    for (uid_t u : *v)
      if (std::find(all.begin(), all.end(), u) == all.end()) all.push_back(u);
  std::string s;
  for (size_t i = 0; i < all.size(); ++i) s += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + user_name(all[i]);
  return s;
}

namespace {

// The programs are linked statically (JSD_STATIC_DEPS), where glibc's
// getpwnam() would need the shared NSS modules of the very glibc it was
// built with: user names come from /etc/passwd itself. Service users are
// local users; a uid is always accepted as a number.
bool passwd_find(const std::function<bool(const std::string& name, uid_t uid)>& match, std::string& name, uid_t& uid) {
  FILE* f = fopen("/etc/passwd", "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) {
    // name:password:uid:gid:gecos:home:shell
    char* c1 = strchr(line, ':');
    char* c2 = c1 ? strchr(c1 + 1, ':') : nullptr;
    if (!c2) continue;
    char* end = nullptr;
    errno = 0;
    unsigned long u = strtoul(c2 + 1, &end, 10);
    if (errno != 0 || end == c2 + 1 || *end != ':' || u > UINT_MAX) continue;
    std::string n(line, size_t(c1 - line));
    if (match(n, uid_t(u))) {
      name = n;
      uid = uid_t(u);
      found = true;
    }
  }
  fclose(f);
  return found;
}

}  // namespace

std::string user_name(uid_t u) {
  std::string name;
  uid_t found = 0;
  if (passwd_find([u](const std::string&, uid_t uid) { return uid == u; }, name, found)) return name;
  return "uid " + std::to_string(u);
}

bool user_id(const std::string& name, uid_t& out) {
  if (name.empty()) return false;
  std::string n;
  if (passwd_find([&name](const std::string& pn, uid_t) { return pn == name; }, n, out)) return true;
  // A bare number is a uid (as chown(1) takes it), with or without a name.
  if (name.size() > 9 || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  out = uid_t(std::stoul(name));
  return true;
}

bool canonical_path(const std::string& path, std::string& out, std::string& why) {
  char* p = realpath(path.c_str(), nullptr);
  if (!p) {
    why = strerror(errno);
    return false;
  }
  out = p;
  free(p);
  return true;
}

namespace {

std::string mode_text(const struct stat& st) {
  char m[8];
  snprintf(m, sizeof m, "%04o", unsigned(st.st_mode & 07777));
  return m;
}

// "its group", "others", "its group and others".
std::string writers(mode_t mode) {
  bool g = mode & S_IWGRP, o = mode & S_IWOTH;
  return g && o ? "its group and others" : g ? "its group" : "others";
}

}  // namespace

bool check_path(const std::string& in, PathKind kind, const PathOwners& owners, std::string& why,
                const LstatFn& lstat_fn) {
  std::string path = in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path.empty() || path[0] != '/') {
    why = "its path " + in + " is not absolute";
    return false;
  }
  auto do_lstat = [&](const std::string& p, struct stat& st) {
    return lstat_fn ? lstat_fn(p, st) : ::lstat(p.c_str(), &st);
  };
  // "/", "/a", "/a/b", ..., path: from the top down, so that the first
  // directory that is not safe is the one named.
  std::vector<std::string> steps{"/"};
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
    steps.push_back(path.substr(0, at));
  if (path.size() > 1) steps.push_back(path);
  bool below_shared = false;  // the directory above is writable by others, and sticky (/tmp)
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string& p = steps[i];
    bool last = i + 1 == steps.size();
    std::string what = last ? "it" : "its directory " + p;
    struct stat st {};
    if (do_lstat(p, st) != 0) {
      why = "cannot check " + p + ": " + strerror(errno);
      return false;
    }
    // A symbolic link on the path as written: whoever owns it chooses where
    // the path leads (its own mode means nothing); the real path behind it
    // is check_trusted_path()'s second walk.
    bool link = S_ISLNK(st.st_mode);
    if (!link && (!last || kind == PathKind::directory) && !S_ISDIR(st.st_mode)) {
      why = what + " is not a directory";
      return false;
    }
    if (!link && last && kind == PathKind::socket && !S_ISSOCK(st.st_mode)) {
      why = "it is not a socket";
      return false;
    }
    if (!owners.may_own(st.st_uid, below_shared)) {
      why = what + " belongs to user " + user_name(st.st_uid);
      return false;
    }
    below_shared = false;
    if (link || (last && kind == PathKind::socket)) continue;
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
      // Sticky: nobody can rename or remove what another user made in it.
      if (last || !(st.st_mode & S_ISVTX)) {
        why = what + " is writable by " + writers(st.st_mode) + " (owner " + user_name(st.st_uid) + ", mode " +
              mode_text(st) + ")";
        return false;
      }
      below_shared = true;
    }
  }
  return true;
}

bool check_trusted_path(const std::string& path, PathKind kind, const PathOwners& owners, std::string& real,
                        std::string& why) {
  // A relative path has no "as written" above the working directory: only
  // its real path is walked.
  if (!path.empty() && path[0] == '/' && !check_path(path, kind, owners, why)) return false;
  if (!canonical_path(path, real, why)) {
    why = "cannot resolve it: " + why;
    return false;
  }
  return real == path || check_path(real, kind, owners, why);
}

}  // namespace jsd
