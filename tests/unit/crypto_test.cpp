#include "crypto.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace jsd;

namespace {
Key random_key() {
  Key k;
  std::string err;
  EXPECT_TRUE(crypto_init(err));
  std::string path = testing::TempDir() + "/k" + std::to_string(getpid()) + std::to_string(rand());
  EXPECT_TRUE(generate_key_file(path, err)) << err;
  EXPECT_TRUE(load_key_file(path, k, err)) << err;
  unlink(path.c_str());
  return k;
}

struct Pair {
  SessionKeys c, s;
};

// Runs the four-message handshake; returns false where it fails.
bool handshake(const Key& ck, const Key& sk, Pair& out, std::string& err) {
  HandshakeClient hc(ck, "alpha", "127.0.0.2:4455");
  HandshakeServer hs(sk, "beta");
  if (!hs.on_hello(hc.hello(), err)) return false;
  std::string proof;
  if (!hc.on_challenge(hs.challenge(), proof, err)) return false;
  if (!hs.on_proof(proof, err)) return false;
  uint16_t port = 0;
  if (!hc.on_accept(hs.accept(50001), port, err)) return false;
  EXPECT_EQ(port, 50001);
  EXPECT_EQ(hc.server_node(), "beta");
  EXPECT_EQ(hs.client_node(), "alpha");
  out.c = hc.keys();
  out.s = hs.keys();
  return true;
}
}  // namespace

TEST(Crypto, KeyFileIsPrivateAndNotOverwritten) {
  std::string err, path = testing::TempDir() + "/key-" + std::to_string(getpid());
  unlink(path.c_str());
  ASSERT_TRUE(generate_key_file(path, err)) << err;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(generate_key_file(path, err));
  EXPECT_NE(err.find("refusing to overwrite"), std::string::npos);
  chmod(path.c_str(), 0644);
  Key k;
  EXPECT_FALSE(load_key_file(path, k, err));
  EXPECT_NE(err.find("chmod 600"), std::string::npos);
  unlink(path.c_str());
  EXPECT_FALSE(load_key_file(path, k, err));
  EXPECT_NE(err.find("--gen-key"), std::string::npos);
}

TEST(Crypto, GarbageKeyFileIsRefused) {
  std::string err, path = testing::TempDir() + "/gk-" + std::to_string(getpid());
  std::ofstream(path) << "not a key\n";
  chmod(path.c_str(), 0600);
  Key k;
  EXPECT_FALSE(load_key_file(path, k, err));
  EXPECT_NE(err.find("64 hex digits"), std::string::npos);
  unlink(path.c_str());
}

TEST(Crypto, HandshakeAgreesOnPerDirectionKeys) {
  Key k = random_key();
  Pair p;
  std::string err;
  ASSERT_TRUE(handshake(k, k, p, err)) << err;
  EXPECT_EQ(p.c.c2s, p.s.c2s);
  EXPECT_EQ(p.c.s2c, p.s.s2c);
  EXPECT_NE(p.c.c2s, p.c.s2c);
  EXPECT_NE(p.c.c2s, k);
}

TEST(Crypto, FreshNoncesGiveFreshSessionKeys) {
  Key k = random_key();
  Pair a, b;
  std::string err;
  ASSERT_TRUE(handshake(k, k, a, err));
  ASSERT_TRUE(handshake(k, k, b, err));
  EXPECT_NE(a.c.c2s, b.c.c2s);
}

TEST(Crypto, WrongKeyIsDetectedByBothSides) {
  Key k1 = random_key(), k2 = random_key();
  // The client notices first: the server's challenge MAC does not verify.
  Pair p;
  std::string err;
  EXPECT_FALSE(handshake(k1, k2, p, err));
  EXPECT_NE(err.find("does not hold our key"), std::string::npos);
  // A client that skips the check still cannot produce a valid proof.
  HandshakeServer hs(k2, "beta");
  HandshakeClient hc(k1, "alpha", "127.0.0.2:4455");
  ASSERT_TRUE(hs.on_hello(hc.hello(), err));
  std::string proof;
  hs.challenge();
  std::string forged = R"({"t":"proof","mac":")" + std::string(64, '0') + R"("})";
  EXPECT_FALSE(hs.on_proof(forged, err));
  EXPECT_NE(err.find("authentication failed"), std::string::npos);
}

TEST(Crypto, ReplayedProofFromAnotherHandshakeFails) {
  Key k = random_key();
  std::string err, proof;
  HandshakeClient hc(k, "alpha", "a:1");
  HandshakeServer hs1(k, "beta");
  ASSERT_TRUE(hs1.on_hello(hc.hello(), err));
  ASSERT_TRUE(hc.on_challenge(hs1.challenge(), proof, err));
  HandshakeServer hs2(k, "beta");  // a second session: new server nonce
  ASSERT_TRUE(hs2.on_hello(hc.hello(), err));
  hs2.challenge();
  EXPECT_FALSE(hs2.on_proof(proof, err));
}

TEST(Crypto, MalformedHandshakeMessages) {
  Key k = random_key();
  std::string err;
  HandshakeServer hs(k, "beta");
  EXPECT_FALSE(hs.on_hello("garbage", err));
  EXPECT_FALSE(hs.on_hello(R"({"t":"hello","v":2,"node":"a","addr":"x","nonce":"00"})", err));
  EXPECT_FALSE(hs.on_hello(R"({"t":"hello","v":1,"node":"a","addr":"x","nonce":"zz"})", err));
  HandshakeClient hc(k, "alpha", "a:1");
  std::string proof;
  EXPECT_FALSE(hc.on_challenge(R"({"t":"refused","reason":"node 'alpha' is not in peers"})", proof, err));
  EXPECT_NE(err.find("not in peers"), std::string::npos);
}

class Channel : public ::testing::Test {
 protected:
  void SetUp() override {
    Key k = random_key();
    std::string err;
    ASSERT_TRUE(handshake(k, k, p, err));
    tx = std::make_unique<SecureChannel>(p.c.c2s, p.c.s2c);
    rx = std::make_unique<SecureChannel>(p.s.s2c, p.s.c2s);
  }
  std::string seal(const std::string& s) {
    std::string out;
    tx->seal(s, out);
    return out;
  }
  Pair p;
  std::unique_ptr<SecureChannel> tx, rx;
};

TEST_F(Channel, SealOpenInOrder) {
  std::string plain;
  for (int i = 0; i < 3; ++i) {
    std::string c = seal("frame " + std::to_string(i));
    EXPECT_EQ(c.find("frame"), std::string::npos);  // encrypted, not just signed
    ASSERT_TRUE(rx->open(c, plain));
    EXPECT_EQ(plain, "frame " + std::to_string(i));
  }
}

TEST_F(Channel, TamperedFrameFails) {
  std::string c = seal("run job hello"), plain;
  for (size_t i = 0; i < c.size(); ++i) {
    std::string t = c;
    t[i] ^= 0x01;
    EXPECT_FALSE(rx->open(t, plain)) << "flipped byte " << i;
  }
  EXPECT_TRUE(rx->open(c, plain));  // failures did not advance the counter
}

TEST_F(Channel, ReplayedFrameFails) {
  std::string c = seal("once"), plain;
  ASSERT_TRUE(rx->open(c, plain));
  EXPECT_FALSE(rx->open(c, plain));
}

TEST_F(Channel, ReorderedFramesFail) {
  std::string a = seal("a"), b = seal("b"), plain;
  EXPECT_FALSE(rx->open(b, plain));
  ASSERT_TRUE(rx->open(a, plain));
  ASSERT_TRUE(rx->open(b, plain));
}

TEST_F(Channel, TruncatedFrameFails) {
  std::string c = seal("some payload"), plain;
  for (size_t n = 0; n < c.size(); ++n) EXPECT_FALSE(rx->open(c.substr(0, n), plain));
  EXPECT_TRUE(rx->open(c, plain));
}

TEST_F(Channel, ReflectedFrameFails) {
  // A frame we sent, bounced back at us, must not open: keys differ per direction.
  std::string c = seal("echo"), plain;
  SecureChannel self(p.c.c2s, p.c.s2c);
  EXPECT_FALSE(self.open(c, plain));
}
