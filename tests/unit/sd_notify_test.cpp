#include "sd_notify.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "temp_dir.h"

using namespace jsd;

namespace {

// The service manager's end: a datagram socket the test binds, at a path or
// (a leading '@') in the abstract namespace.
class FakeManager {
 public:
  explicit FakeManager(const std::string& address) : address_(address) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, address.data(), address.size());
    socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + address.size());
    if (address[0] == '@')
      a.sun_path[0] = '\0';
    else
      len += 1;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0) << strerror(errno);
  }
  ~FakeManager() {
    if (fd_ >= 0) close(fd_);
  }
  // The next datagram: a datagram to a local socket is there once sendto()
  // returned, so not waiting is right.
  std::string next() {
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    return n < 0 ? "(nothing: " + std::string(strerror(errno)) + ")" : std::string(buf, size_t(n));
  }

 private:
  std::string address_;
  int fd_ = -1;
};

std::string abstract_name() {
  return "@jsd-test-notify-" + std::to_string(getpid()) + "-" + std::to_string(randombytes_random());
}

}  // namespace

TEST(SdNotify, SendsEachStateAsOneDatagramToAPath) {
  jsd_test::TempDir dir("notify");
  std::string path = dir.file("notify.sock");
  FakeManager m(path);
  SdNotify n(path);
  ASSERT_TRUE(n.enabled());
  std::string err;
  ASSERT_TRUE(n.send("READY=1\nSTATUS=listening, 0 links up", err)) << err;
  ASSERT_TRUE(n.send("STOPPING=1", err)) << err;
  EXPECT_EQ(m.next(), "READY=1\nSTATUS=listening, 0 links up");
  EXPECT_EQ(m.next(), "STOPPING=1");
}

TEST(SdNotify, AbstractNamespaceAddress) {
  ASSERT_GE(sodium_init(), 0);
  std::string name = abstract_name();
  FakeManager m(name);
  SdNotify n(name);
  std::string err;
  ASSERT_TRUE(n.send("READY=1", err)) << err;
  EXPECT_EQ(m.next(), "READY=1");
}

TEST(SdNotify, TakesTheAddressFromTheEnvironmentAndRemovesIt) {
  ASSERT_GE(sodium_init(), 0);
  std::string name = abstract_name();
  FakeManager m(name);
  ASSERT_EQ(setenv("NOTIFY_SOCKET", name.c_str(), 1), 0);
  SdNotify n = SdNotify::from_env();
  EXPECT_EQ(getenv("NOTIFY_SOCKET"), nullptr);  // children must not inherit it
  std::string err;
  ASSERT_TRUE(n.send("STATUS=2 links up", err)) << err;
  EXPECT_EQ(m.next(), "STATUS=2 links up");
}

TEST(SdNotify, WithoutAManagerNothingIsSent) {
  unsetenv("NOTIFY_SOCKET");
  SdNotify n = SdNotify::from_env();
  EXPECT_FALSE(n.enabled());
  std::string err;
  EXPECT_TRUE(n.send("READY=1", err));
  EXPECT_TRUE(err.empty());
}

TEST(SdNotify, BadAddressesAreErrorsNotCrashes) {
  std::string err;
  SdNotify relative("relative/path");
  EXPECT_FALSE(relative.send("READY=1", err));
  EXPECT_NE(err.find("neither a path nor @abstract"), std::string::npos) << err;
  SdNotify long_one("/" + std::string(200, 'x'));
  EXPECT_FALSE(long_one.send("READY=1", err));
  EXPECT_NE(err.find("too long"), std::string::npos) << err;
  jsd_test::TempDir dir("notify");
  SdNotify nobody(dir.file("nobody.sock"));  // nobody bound it
  EXPECT_FALSE(nobody.send("READY=1", err));
  EXPECT_NE(err.find("cannot notify"), std::string::npos) << err;
}
