// safe_path: the StrictModes walk. On a real temporary tree for what a
// non-root test can arrange (modes), and on a faked lstat for what it
// cannot (files of other users, root's /tmp).
#include "base/safe_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "temp_dir.h"

using namespace jsd;

namespace {

// A tree of directories and files by path: owner and mode (with type bits).
struct FakeTree {
  std::map<std::string, std::pair<uid_t, mode_t>> entries;
  void add(const std::string& p, uid_t owner, mode_t mode) { entries[p] = {owner, mode}; }
  LstatFn fn() const {
    return [this](const std::string& p, struct stat& st) {
      auto it = entries.find(p);
      if (it == entries.end()) {
        errno = ENOENT;
        return -1;
      }
      st = {};
      st.st_uid = it->second.first;
      st.st_mode = it->second.second;
      return 0;
    };
  }
};

constexpr uid_t kUser = 1000, kService = 1001, kAttacker = 1002;

// / and /tmp as on any system; /tmp/jsd and below as each test makes them.
FakeTree system_tree() {
  FakeTree t;
  t.add("/", 0, S_IFDIR | 0755);
  t.add("/tmp", 0, S_IFDIR | 01777);
  t.add("/var", 0, S_IFDIR | 0755);
  t.add("/var/lib", 0, S_IFDIR | 0755);
  return t;
}

PathOwners tool_owners() {
  PathOwners o;
  o.firm = {0, kUser};
  o.learnt = {kService};
  return o;
}

}  // namespace

TEST(SafePath, PlantedDirectoryBelowTmpIsRefusedByItsOwnersName) {
  FakeTree t = system_tree();
  t.add("/tmp/jsd", kAttacker, S_IFDIR | 0755);
  t.add("/tmp/jsd/alpha", kAttacker, S_IFDIR | 0700);
  t.add("/tmp/jsd/alpha/control.sock", kAttacker, S_IFSOCK | 0600);
  PathOwners o = tool_owners();
  o.learnt = {kAttacker};  // the state directory's owner, as the tool learns it
  std::string why;
  EXPECT_FALSE(check_path("/tmp/jsd/alpha/control.sock", PathKind::socket, o, why, t.fn()));
  EXPECT_EQ(why, "its directory /tmp/jsd belongs to user " + user_name(kAttacker));
}

TEST(SafePath, ASymbolicLinkIsJudgedByItsOwner) {
  FakeTree t = system_tree();
  t.add("/tmp/jsd", kAttacker, S_IFLNK | 0777);  // -> wherever the attacker likes
  t.add("/tmp/jsd/alpha", kService, S_IFDIR | 0700);
  t.add("/tmp/jsd/alpha/control.sock", kService, S_IFSOCK | 0600);
  std::string why;
  EXPECT_FALSE(check_path("/tmp/jsd/alpha/control.sock", PathKind::socket, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "its directory /tmp/jsd belongs to user " + user_name(kAttacker));
  // root's link (as /var/run -> /run): its mode 0777 means nothing.
  t.add("/tmp/jsd", 0, S_IFLNK | 0777);
  EXPECT_TRUE(check_path("/tmp/jsd/alpha/control.sock", PathKind::socket, tool_owners(), why, t.fn())) << why;
}

TEST(SafePath, LearntOwnerIsTrustedWhereOnlyTrustedUsersCouldHaveMadeIt) {
  FakeTree t = system_tree();
  t.add("/var/lib/jsd", kService, S_IFDIR | 0700);
  t.add("/var/lib/jsd/alpha", kService, S_IFDIR | 0700);
  t.add("/var/lib/jsd/alpha/control.sock", kService, S_IFSOCK | 0600);
  std::string why;
  EXPECT_TRUE(check_path("/var/lib/jsd/alpha/control.sock", PathKind::socket, tool_owners(), why, t.fn())) << why;
}

TEST(SafePath, FirmOwnerBelowTmpIsTrusted) {
  FakeTree t = system_tree();
  t.add("/tmp/jsd-it.x", kUser, S_IFDIR | 0700);
  t.add("/tmp/jsd-it.x/alpha", kService, S_IFDIR | 0700);
  t.add("/tmp/jsd-it.x/alpha/control.sock", kService, S_IFSOCK | 0666);  // a socket's own mode is not checked
  std::string why;
  EXPECT_TRUE(check_path("/tmp/jsd-it.x/alpha/control.sock", PathKind::socket, tool_owners(), why, t.fn())) << why;
  // Right below /tmp even the learnt user is not enough.
  t.add("/tmp/jsd-it.x", kService, S_IFDIR | 0700);
  EXPECT_FALSE(check_path("/tmp/jsd-it.x/alpha/control.sock", PathKind::socket, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "its directory /tmp/jsd-it.x belongs to user " + user_name(kService));
}

TEST(SafePath, WritableDirectoriesAreRefusedWithOwnerAndMode) {
  FakeTree t = system_tree();
  t.add("/srv", 0, S_IFDIR | 0775);
  t.add("/srv/k", 0, S_IFDIR | 0700);
  t.add("/srv/k/alpha.key", kService, S_IFREG | 0600);
  std::string why;
  EXPECT_FALSE(check_path("/srv/k/alpha.key", PathKind::secret, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "its directory /srv is writable by its group (owner root, mode 0775)");
  // Sticky does not help a directory that is the object itself, nor one
  // that is only group-writable without it.
  t.add("/srv", 0, S_IFDIR | 0757);
  EXPECT_FALSE(check_path("/srv/k/alpha.key", PathKind::secret, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "its directory /srv is writable by others (owner root, mode 0757)");
  t.add("/srv", 0, S_IFDIR | 01777);
  EXPECT_TRUE(check_path("/srv/k/alpha.key", PathKind::secret, tool_owners(), why, t.fn())) << why;
  EXPECT_FALSE(check_path("/srv", PathKind::directory, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "it is writable by its group and others (owner root, mode 1777)");
}

TEST(SafePath, FilesOfOtherUsersAndWritableFilesAreRefused) {
  FakeTree t = system_tree();
  t.add("/etc", 0, S_IFDIR | 0755);
  t.add("/etc/jsd", 0, S_IFDIR | 0750);
  t.add("/etc/jsd/node.key", kAttacker, S_IFREG | 0600);
  t.add("/etc/jsd/jsd.conf", 0, S_IFREG | 0664);
  std::string why;
  EXPECT_FALSE(check_path("/etc/jsd/node.key", PathKind::secret, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "it belongs to user " + user_name(kAttacker));
  EXPECT_FALSE(check_path("/etc/jsd/jsd.conf", PathKind::file, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "it is writable by its group (owner root, mode 0664)");
  t.add("/etc/jsd/node.key", kService, S_IFREG | 0600);
  EXPECT_TRUE(check_path("/etc/jsd/node.key", PathKind::secret, tool_owners(), why, t.fn())) << why;
  // A directory where a file is expected on the way, a file where a
  // directory is, a missing one.
  EXPECT_FALSE(check_path("/etc/jsd/node.key/x", PathKind::file, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "its directory /etc/jsd/node.key is not a directory");
  EXPECT_FALSE(check_path("/etc/jsd/none", PathKind::file, tool_owners(), why, t.fn()));
  EXPECT_NE(why.find("cannot check /etc/jsd/none"), std::string::npos) << why;
  EXPECT_FALSE(check_path("/etc/jsd/jsd.conf", PathKind::socket, tool_owners(), why, t.fn()));
  EXPECT_EQ(why, "it is not a socket");
  EXPECT_FALSE(check_path("etc/jsd", PathKind::directory, tool_owners(), why, t.fn()));
}

TEST(SafePath, OwnerNamesForRefusalLines) {
  PathOwners o;
  o.firm = {0, 0};
  EXPECT_EQ(o.names(), "root");
  o.learnt = {0, kService};
  EXPECT_EQ(o.names(), "root or " + user_name(kService));
  uid_t u = 1;
  EXPECT_TRUE(user_id("root", u));
  EXPECT_EQ(u, 0u);
  EXPECT_TRUE(user_id("4242", u));
  EXPECT_EQ(u, 4242u);
  EXPECT_FALSE(user_id("no-such-user-jsd-test", u));
  EXPECT_FALSE(user_id("", u));
}

// The real file system: a tree of this user's own, modes changed as a
// non-root user can.
TEST(SafePath, RealTreeOfTheCurrentUser) {
  jsd_test::TempDir d("safe-path");
  std::string real, why;
  ASSERT_TRUE(canonical_path(d.path, real, why)) << why;
  ASSERT_EQ(mkdir((real + "/keys").c_str(), 0700), 0);
  std::string key = real + "/keys/node.key";
  std::ofstream(key) << "x\n";
  ASSERT_EQ(chmod(key.c_str(), 0600), 0);
  PathOwners o;
  o.firm = {0, geteuid()};
  // Whatever is above the temporary directory (a CI runner's TMPDIR may be
  // anything) is not this test's to judge: start the walk where it can.
  struct stat st {};
  ASSERT_EQ(lstat(real.c_str(), &st), 0);
  bool above_ok = check_path(real, PathKind::directory, o, why);
  if (!above_ok) GTEST_SKIP() << "the temporary directory itself is not safe here: " << why;
  EXPECT_TRUE(check_path(key, PathKind::secret, o, why)) << why;
  ASSERT_EQ(chmod((real + "/keys").c_str(), 0770), 0);
  EXPECT_FALSE(check_path(key, PathKind::secret, o, why));
  EXPECT_EQ(why,
            "its directory " + real + "/keys is writable by its group (owner " + user_name(geteuid()) + ", mode 0770)");
  ASSERT_EQ(chmod((real + "/keys").c_str(), 0700), 0);
  ASSERT_EQ(chmod(key.c_str(), 0620), 0);
  EXPECT_FALSE(check_path(key, PathKind::secret, o, why));
  EXPECT_EQ(why, "it is writable by its group (owner " + user_name(geteuid()) + ", mode 0620)");
  ASSERT_EQ(chmod(key.c_str(), 0600), 0);
  // Someone else's view: the same tree is not trusted by a user who is
  // neither root nor its owner.
  PathOwners other;
  other.firm = {geteuid() + 1};
  EXPECT_FALSE(check_path(real, PathKind::directory, other, why));
  // A symbolic link is resolved first; the walk sees the real path.
  std::string link = real + "/link";
  ASSERT_EQ(symlink((real + "/keys").c_str(), link.c_str()), 0);
  std::string resolved;
  ASSERT_TRUE(canonical_path(link + "/node.key", resolved, why)) << why;
  EXPECT_EQ(resolved, key);
  resolved.clear();
  EXPECT_TRUE(check_trusted_path(link + "/node.key", PathKind::secret, o, resolved, why)) << why;
  EXPECT_EQ(resolved, key);
  // ... and the real path is walked too: a safe link to an unsafe place.
  ASSERT_EQ(chmod((real + "/keys").c_str(), 0777), 0);
  EXPECT_FALSE(check_trusted_path(link + "/node.key", PathKind::secret, o, resolved, why));
  EXPECT_EQ(why, "its directory " + real + "/keys is writable by its group and others (owner " + user_name(geteuid()) +
                     ", mode 0777)");
  ASSERT_EQ(chmod((real + "/keys").c_str(), 0700), 0);
  EXPECT_FALSE(canonical_path(real + "/none/x", resolved, why));
}
