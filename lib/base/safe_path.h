// Local trust: whether a path is what its owners made it, in the spirit of
// OpenSSH's StrictModes (safe_path()). A file or socket is only as safe as
// every directory above it: whoever can write to one of them can rename a
// directory aside and put their own in its place. So the object and every
// directory up to / must belong to a trusted user and be writable by nobody
// else. A world-writable directory with the sticky bit (/tmp) may be on the
// path, because nobody can rename what another user made in it; but anyone
// can make the first name in it, so the directory right below it must belong
// to someone trusted a priori (root, the invoking user, a user the
// configuration names), not to a user found only by looking at the tree.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace jsd {

struct PathOwners {
  // May own the object and any directory on its path.
  std::vector<uid_t> firm;
  // May own them too, except a directory right below a world-writable one:
  // a user learnt from the tree itself (the state directory's owner).
  std::vector<uid_t> learnt;
  bool may_own(uid_t u, bool below_shared) const;
  // "root or jsd" (for refusal lines).
  std::string names() const;
};

// What the object at the end of the path is.
enum class PathKind {
  directory,  // a directory (a state directory): not writable by group or others
  file,       // a regular file read for its content: not writable by group or others
  secret,     // the same; its readability is read_secret()'s to judge (identity.cpp)
  socket,     // a Unix socket: its own mode says who may connect, not whom to trust
};

// lstat(2), replaced by the unit test, which cannot make files that other
// users own.
using LstatFn = std::function<int(const std::string& path, struct stat& st)>;

// Checks path, which must be absolute, and each directory above it up to
// /, as written: a symbolic link on the way is judged by its owner only,
// so the real path needs a walk of its own (check_trusted_path). On refusal returns
// false and why, relative to the object: "it belongs to user jsdrt",
// "its directory /tmp/jsd belongs to user jsdrt", "its directory /srv/k is
// writable by its group (owner root, mode 0775)".
bool check_path(const std::string& path, PathKind kind, const PathOwners& owners, std::string& why,
                const LstatFn& lstat_fn = {});

// Both walks: the path as written (a symbolic link on it must belong to a
// trusted user, as anything on it) and, if that differs, the real path
// behind it (real), which must pass on its own. why as check_path's, for
// whichever walk refused.
bool check_trusted_path(const std::string& path, PathKind kind, const PathOwners& owners, std::string& real,
                        std::string& why);

// realpath(3) as a string; false with why (strerror) if the path or a
// directory on it does not exist or cannot be searched.
bool canonical_path(const std::string& path, std::string& out, std::string& why);

// "jsdrt", or "uid 1234" for a uid without a name.
std::string user_name(uid_t u);
// The uid of a user name (or of a decimal uid); false if there is none.
bool user_id(const std::string& name, uid_t& out);

}  // namespace jsd
