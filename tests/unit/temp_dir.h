// A fresh directory for one test, under testing::TempDir() ($TEST_TMPDIR,
// else $TMPDIR, else /tmp), removed with everything in it when the test's
// scope ends, also after a failed ASSERT: a unit test run leaves nothing
// behind (the ctest unit.no_leftovers checks).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace jsd_test {

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    std::string base = testing::TempDir();
    if (base.empty() || base.back() != '/') base += '/';
    std::string tmpl = base + "jsd-" + tag + "-XXXXXX";
    const char* p = mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr) << "mkdtemp " << tmpl;
    path = p ? p : "/nonexistent";
  }
  ~TempDir() {
    std::error_code ec;
    if (path != "/nonexistent") std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path + "/" + name; }

  std::string path;
};

}  // namespace jsd_test
