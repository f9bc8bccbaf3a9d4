#include "libexec.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "jsd_paths.h"
#include "temp_dir.h"

using namespace jsd;

namespace {
void program(const std::string& path) {
  std::ofstream(path) << "#!/bin/sh\n";
  ASSERT_EQ(chmod(path.c_str(), 0755), 0);
}
}  // namespace

TEST(Libexec, TheOperatorsDirectoryIsFinal) {
  EXPECT_EQ(libexec_candidates("/opt/x", "/usr/bin"), (std::vector<std::string>{"/opt/x"}));
  auto c = libexec_candidates("", "/usr/bin");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], "/usr/bin");
  EXPECT_EQ(c[1], std::string("/usr/bin/") + JSD_LIBEXEC_RELATIVE);
  EXPECT_EQ(c[2], JSD_LIBEXEC_INSTALLED);
}

// A build tree has the programs beside jsd-listener; an installed tree in
// ../libexec/jsd; where neither holds all three, the last candidate is named.
TEST(Libexec, TheFirstDirectoryWithAllThreePrograms) {
  jsd_test::TempDir d("libexec");
  std::string bin = d.file("bin"), libexec = d.file("libexec");
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(libexec.c_str(), 0755), 0);
  program(libexec + "/jsd-client");
  program(libexec + "/jsd-queue-server");
  program(libexec + "/jsd-job");
  program(bin + "/jsd-client");  // only some of them: not this one
  program(bin + "/jsd-job");
  EXPECT_EQ(choose_libexec_dir({bin, libexec, "/nonexistent"}), libexec);
  program(bin + "/jsd-queue-server");
  EXPECT_EQ(choose_libexec_dir({bin, libexec, "/nonexistent"}), bin);
  EXPECT_EQ(choose_libexec_dir({d.file("none"), "/nonexistent"}), "/nonexistent");
}
