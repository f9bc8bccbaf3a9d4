// Trust: what a node loads from its config about identities, and check_peer(),
// the one place that decides who a key is.
#include "link/trust.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "temp_dir.h"

using namespace jsd;

namespace {

// A fresh directory, removed with everything in it at scope exit.
struct TempDir : jsd_test::TempDir {
  TempDir() : jsd_test::TempDir("trust") {}
};

constexpr int64_t kNb = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kNa = 1798761600;  // 2027-01-01T00:00:00Z
constexpr int64_t kNow = kNb + 86400;

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += x + "\n";
  return s;
}

// Keys, CAs and certificates made with the real tools, in one temp dir.
class TrustTest : public ::testing::Test {
 protected:
  // The public key of node `name`, generating <dir>/<name>.key on first use.
  Key32 key(const std::string& name) {
    auto it = keys_.find(name);
    if (it != keys_.end()) return it->second;
    Key32 pub{};
    std::string err;
    EXPECT_TRUE(gen_node_key_file(dir_.file(name + ".key"), pub, err)) << err;
    keys_[name] = pub;
    return pub;
  }
  std::string key_text(const std::string& name) { return key_to_text(key(name)); }

  // A CA, generated with gen_ca_file and read back with load_ca_key.
  CaKey ca(const std::string& name) {
    Key32 pub{};
    CaKey c;
    std::string err, path = dir_.file(name + ".ca");
    EXPECT_TRUE(gen_ca_file(path, pub, err)) << err;
    EXPECT_TRUE(load_ca_key(path, c, err)) << err;
    EXPECT_EQ(c.pub, pub);
    return c;
  }

  static std::string cert(const CaKey& ca, const std::string& name, const Key32& k,
                          std::vector<std::string> groups = {}, int64_t nb = kNb, int64_t na = kNa) {
    Cert c;
    c.name = name;
    c.groups = std::move(groups);
    c.key = k;
    c.not_before = nb;
    c.not_after = na;
    std::string text = sign_cert(ca, c);
    EXPECT_FALSE(text.empty());
    return text;
  }

  std::string write_cert(const std::string& file, const std::string& text) {
    std::string path = dir_.file(file);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text << "\n";
    EXPECT_EQ(chmod(path.c_str(), 0644), 0);
    return path;
  }

  // The config of node "self": its key, nothing else.
  Config config() {
    Config c;
    c.node = "self";
    key("self");
    c.key_file = dir_.file("self.key");
    return c;
  }

  std::unique_ptr<Trust> load(const Config& c) {
    auto t = std::make_unique<Trust>();
    std::vector<std::string> errors;
    EXPECT_TRUE(t->load(c, errors, kNow)) << join(errors);
    return t;
  }

  // Loads and expects failure; returns the error lines.
  std::vector<std::string> load_errors(const Config& c) {
    Trust t;
    std::vector<std::string> errors;
    EXPECT_FALSE(t.load(c, errors, kNow));
    EXPECT_FALSE(errors.empty());
    return errors;
  }

  TempDir dir_;
  std::map<std::string, Key32> keys_;
};

Key32 other_key() {
  Key32 k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i * 7 + 1);
  return k;
}

}  // namespace

// --- load ---

TEST_F(TrustTest, LoadsOwnKeyPinsAndPsk) {
  Config c = config();
  c.peers["alpha"] = {"127.0.0.2", 4455};
  c.peer_keys["alpha"] = {key_text("alpha")};
  std::string err;
  ASSERT_TRUE(gen_psk_file(dir_.file("psk"), err)) << err;
  c.psk_file = dir_.file("psk");
  auto t = load(c);
  EXPECT_EQ(t->self().pub, key("self"));
  Key32 priv{}, pub{};
  ASSERT_TRUE(load_node_key(c.key_file, priv, pub, err)) << err;
  EXPECT_EQ(t->self().priv, priv);
  ASSERT_TRUE(t->has_psk());
  Key32 psk{};
  ASSERT_TRUE(load_psk_file(c.psk_file, psk, err)) << err;
  EXPECT_EQ(t->psk(), psk);
  EXPECT_TRUE(t->cert_text().empty());
  EXPECT_FALSE(t->trusts_cas());
  ASSERT_NE(t->pinned("alpha"), nullptr);
  EXPECT_EQ(*t->pinned("alpha"), std::vector<Key32>{key("alpha")});
  EXPECT_EQ(t->pinned("beta"), nullptr);
}

TEST_F(TrustTest, LoadsOwnCertificate) {
  CaKey root = ca("root");
  Config c = config();
  std::string text = cert(root, "self", key("self"), {"web"});
  c.cert_file = write_cert("self.crt", text);
  c.trusted_cas = {key_to_text(root.pub)};
  auto t = load(c);
  EXPECT_EQ(t->cert_text(), text);
  EXPECT_TRUE(t->trusts_cas());
}

TEST_F(TrustTest, LoadFailsWithoutKeyFile) {
  Config c = config();
  c.key_file = dir_.file("missing.key");
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_TRUE(contains(errors[0], "cannot open node key file " + c.key_file)) << errors[0];
  EXPECT_TRUE(contains(errors[0], "--gen-key")) << errors[0];
}

TEST_F(TrustTest, LoadFailsOnKeyFileReadableByOthers) {
  Config c = config();
  ASSERT_EQ(chmod(c.key_file.c_str(), 0644), 0);
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_TRUE(contains(errors[0], "accessible by group or others")) << errors[0];
  EXPECT_TRUE(contains(errors[0], "chmod 600 " + c.key_file)) << errors[0];
}

TEST_F(TrustTest, LoadFailsOnPskFileReadableByOthers) {
  Config c = config();
  std::string err;
  ASSERT_TRUE(gen_psk_file(dir_.file("psk"), err)) << err;
  c.psk_file = dir_.file("psk");
  ASSERT_EQ(chmod(c.psk_file.c_str(), 0640), 0);
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_TRUE(contains(errors[0], "psk file " + c.psk_file)) << errors[0];
}

TEST_F(TrustTest, LoadFailsOnCertificateForAnotherNode) {
  CaKey root = ca("root");
  Config c = config();
  c.trusted_cas = {key_to_text(root.pub)};
  c.cert_file = write_cert("other.crt", cert(root, "gamma", key("self")));
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_TRUE(contains(errors[0], "cert_file " + c.cert_file)) << errors[0];
  EXPECT_TRUE(contains(errors[0], "the certificate is for 'gamma', not this node ('self')")) << errors[0];
}

TEST_F(TrustTest, LoadFailsOnCertificateForAnotherKey) {
  CaKey root = ca("root");
  Config c = config();
  c.trusted_cas = {key_to_text(root.pub)};
  c.cert_file = write_cert("self.crt", cert(root, "self", key("alpha")));
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_TRUE(contains(errors[0], "another key than key_file's")) << errors[0];
}

TEST_F(TrustTest, LoadFailsOnExpiredOwnCertificate) {
  CaKey root = ca("root");
  Config c = config();
  c.trusted_cas = {key_to_text(root.pub)};
  c.cert_file = write_cert("self.crt", cert(root, "self", key("self"), {}, kNb, kNow - 1));
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_TRUE(contains(errors[0], "expired")) << errors[0];
  // Without trusted_cas the expiry is still noticed.
  c.trusted_cas.clear();
  errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_TRUE(contains(errors[0], "the certificate has expired")) << errors[0];
}

TEST_F(TrustTest, LoadFailsOnPeerWithoutKeyAndNoCa) {
  Config c = config();
  c.peers["alpha"] = {"127.0.0.2", 4455};
  c.peers["beta"] = {"127.0.0.3", 4455};
  c.peer_keys["beta"] = {key_text("beta")};
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 1u) << join(errors);
  EXPECT_EQ(errors[0], "peers.alpha: no public_key, and no trusted_cas to check its certificate");
  // With a CA to vouch for it, the same peer list loads.
  CaKey root = ca("root");
  c.trusted_cas = {key_to_text(root.pub)};
  load(c);
}

TEST_F(TrustTest, LoadFailsOnInvalidKeyTexts) {
  Config c = config();
  c.peer_keys["alpha"] = {"not-a-key"};
  c.trusted_cas = {"AAAA"};
  c.revoked = {key_text("beta") + "x"};
  auto errors = load_errors(c);
  ASSERT_EQ(errors.size(), 3u) << join(errors);
  EXPECT_TRUE(contains(join(errors), "peers.alpha.public_key: 'not-a-key' is not a valid public key")) << join(errors);
  EXPECT_TRUE(contains(join(errors), "trusted_cas: 'AAAA'")) << join(errors);
  EXPECT_TRUE(contains(join(errors), "revoked: ")) << join(errors);
}

// --- check_peer ---

TEST_F(TrustTest, PinnedKeyAccepted) {
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  auto t = load(c);
  PeerVerdict v = t->check_peer("alpha", key("alpha"), "", kNow);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.name, "alpha");
  EXPECT_FALSE(v.by_cert);
  EXPECT_TRUE(v.groups.empty());
  EXPECT_TRUE(v.reason.empty());
}

TEST_F(TrustTest, WrongKeyForClaimedNameRefused) {
  CaKey root = ca("root");
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  c.trusted_cas = {key_to_text(root.pub)};
  auto t = load(c);
  PeerVerdict v = t->check_peer("alpha", key("mallory"), "", kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "key not known for alpha");
  // A pinned key wins over a certificate: a valid one for alpha on another key does not help.
  v = t->check_peer("alpha", key("mallory"), cert(root, "alpha", key("mallory")), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "key not known for alpha");
}

TEST_F(TrustTest, KeyPinnedUnderAnotherNameCannotClaimThisOne) {
  CaKey root = ca("root");
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  c.trusted_cas = {key_to_text(root.pub)};
  auto t = load(c);
  PeerVerdict v = t->check_peer("gamma", key("alpha"), "", kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "key belongs to alpha, not gamma");
  // Not even with a valid certificate naming gamma on that key.
  v = t->check_peer("gamma", key("alpha"), cert(root, "gamma", key("alpha")), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "key belongs to alpha, not gamma");
}

// Issue 24: a certified peer named like an address took that address's
// calls. Such a name is refused at the handshake, certificate or not.
TEST_F(TrustTest, ANameLikeAnAddressIsRefused) {
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  auto t = load(c);
  PeerVerdict v = t->check_peer("127.0.6.21:4455", key("mallory"), "", kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "invalid node name");
  EXPECT_FALSE(t->check_peer("alpha:1", key("alpha"), "", kNow).ok);
}

TEST_F(TrustTest, KeyPinnedForTwoNamesClaimingAThirdRefused) {
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  c.peer_keys["beta"] = {key_text("beta")};
  auto t = load(c);
  EXPECT_FALSE(t->check_peer("alpha", key("beta"), "", kNow).ok);
  EXPECT_FALSE(t->check_peer("beta", key("alpha"), "", kNow).ok);
  EXPECT_TRUE(t->check_peer("beta", key("beta"), "", kNow).ok);
}

TEST_F(TrustTest, OwnNameRefused) {
  CaKey root = ca("root");
  Config c = config();
  c.trusted_cas = {key_to_text(root.pub)};
  auto t = load(c);
  for (const Key32& k : {key("self"), key("mallory")}) {
    PeerVerdict v = t->check_peer("self", k, cert(root, "self", k), kNow);
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.reason, "it claims this node's own name");
  }
}

TEST_F(TrustTest, InvalidClaimedNameRefused) {
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  auto t = load(c);
  for (const std::string& name :
       {std::string(""), std::string("al pha"), std::string("-alpha"), std::string(65, 'a'), std::string("a\nb")}) {
    PeerVerdict v = t->check_peer(name, key("alpha"), "", kNow);
    EXPECT_FALSE(v.ok) << name;
    EXPECT_EQ(v.reason, "invalid node name") << name;
  }
}

TEST_F(TrustTest, RevokedKeyRefusedEvenIfPinned) {
  CaKey root = ca("root");
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha"), key_text("alpha2")};
  c.trusted_cas = {key_to_text(root.pub)};
  c.revoked = {key_text("alpha"), key_text("delta")};
  auto t = load(c);
  PeerVerdict v = t->check_peer("alpha", key("alpha"), "", kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "key of alpha is revoked");
  // The other pinned key of the same peer still works.
  EXPECT_TRUE(t->check_peer("alpha", key("alpha2"), "", kNow).ok);
  // Nor does a certificate vouch for a revoked key.
  v = t->check_peer("delta", key("delta"), cert(root, "delta", key("delta")), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "key of delta is revoked");
}

TEST_F(TrustTest, AllPinnedKeysOfARolloverAccepted) {
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha-old"), key_text("alpha-new"), key_text("alpha-next")};
  auto t = load(c);
  ASSERT_NE(t->pinned("alpha"), nullptr);
  EXPECT_EQ(t->pinned("alpha")->size(), 3u);
  for (const char* k : {"alpha-old", "alpha-new", "alpha-next"}) {
    PeerVerdict v = t->check_peer("alpha", key(k), "", kNow);
    EXPECT_TRUE(v.ok) << k << ": " << v.reason;
    EXPECT_EQ(v.name, "alpha");
  }
  EXPECT_FALSE(t->check_peer("alpha", key("alpha-stranger"), "", kNow).ok);
  EXPECT_FALSE(t->check_peer("alpha", other_key(), "", kNow).ok);
}

TEST_F(TrustTest, CertifiedPeerAcceptedWithGroups) {
  CaKey root = ca("root"), second = ca("second");
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  c.trusted_cas = {key_to_text(second.pub), key_to_text(root.pub)};
  auto t = load(c);
  PeerVerdict v = t->check_peer("delta", key("delta"), cert(root, "delta", key("delta"), {"web", "ops"}), kNow);
  ASSERT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.name, "delta");
  EXPECT_TRUE(v.by_cert);
  EXPECT_EQ(v.groups, (std::vector<std::string>{"web", "ops"}));
  EXPECT_TRUE(v.reason.empty());
  // At both edges of the window too.
  EXPECT_TRUE(t->check_peer("delta", key("delta"), cert(root, "delta", key("delta")), kNb).ok);
  EXPECT_TRUE(t->check_peer("delta", key("delta"), cert(root, "delta", key("delta")), kNa).ok);
  // Either trusted CA will do.
  v = t->check_peer("delta", key("delta"), cert(second, "delta", key("delta")), kNow);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_TRUE(v.groups.empty());
  // A pinned peer presenting a certificate is accepted by its pin, not the certificate.
  v = t->check_peer("alpha", key("alpha"), cert(root, "alpha", key("alpha"), {"admin"}), kNow);
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_FALSE(v.by_cert);
  EXPECT_TRUE(v.groups.empty());
}

TEST_F(TrustTest, BadCertificatesRefused) {
  CaKey root = ca("root"), rogue = ca("rogue");
  Config c = config();
  c.trusted_cas = {key_to_text(root.pub)};
  auto t = load(c);
  const Key32 d = key("delta");

  PeerVerdict v = t->check_peer("delta", d, cert(root, "delta", d, {}, kNb, kNow - 1), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason.find("certificate for delta expired"), 0u) << v.reason;

  v = t->check_peer("delta", d, cert(root, "delta", d, {}, kNow + 1, kNa), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason.find("certificate for delta is not valid before"), 0u) << v.reason;

  v = t->check_peer("delta", d, cert(rogue, "delta", d), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason.find("certificate for delta is signed by an untrusted CA"), 0u) << v.reason;

  v = t->check_peer("delta", d, cert(root, "delta", key("epsilon")), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "the certificate is for another key");

  v = t->check_peer("delta", d, cert(root, "epsilon", d), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "the certificate is for epsilon, not delta");

  v = t->check_peer("delta", d, "", kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "key not known for delta and no certificate presented");

  std::string good = cert(root, "delta", d);
  std::string forged = good;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  v = t->check_peer("delta", d, forged, kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason.find("bad certificate: "), 0u) << v.reason;
  v = t->check_peer("delta", d, "garbage", kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason.find("bad certificate: "), 0u) << v.reason;

  // Control: the genuine one passes.
  EXPECT_TRUE(t->check_peer("delta", d, good, kNow).ok);
}

TEST_F(TrustTest, UnknownNameWithoutCaRefused) {
  CaKey root = ca("root");
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  auto t = load(c);
  EXPECT_FALSE(t->trusts_cas());
  // Even a well-formed certificate means nothing without trusted_cas.
  for (const std::string& ct : {std::string(), cert(root, "zeta", key("zeta"))}) {
    PeerVerdict v = t->check_peer("zeta", key("zeta"), ct, kNow);
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.reason, "key not known for zeta (not in peers)");
  }
}

namespace {

// A node known only through a gateway: its certificate alone says its key.
TEST_F(TrustTest, ACertificateAloneGivesTheKeyOfANodeReachedThroughAGateway) {
  CaKey root = ca("root"), rogue = ca("rogue");
  Config c = config();
  c.peer_keys["alpha"] = {key_text("alpha")};
  c.trusted_cas = {key_to_text(root.pub)};
  c.revoked = {key_text("revoked")};
  auto t = load(c);
  Key32 got{};
  PeerVerdict v = t->check_cert_for("gamma", cert(root, "gamma", key("gamma"), {"web"}), kNow, got);
  ASSERT_TRUE(v.ok) << v.reason;
  EXPECT_TRUE(v.by_cert);
  EXPECT_EQ(got, key("gamma"));
  EXPECT_EQ(v.groups, std::vector<std::string>{"web"});
  EXPECT_EQ(v.not_after, kNa);
  auto refused = [&](const std::string& name, const std::string& text, const std::string& why) {
    Key32 k{};
    PeerVerdict r = t->check_cert_for(name, text, kNow, k);
    EXPECT_FALSE(r.ok) << name;
    EXPECT_NE(r.reason.find(why), std::string::npos) << r.reason;
    EXPECT_EQ(k, Key32{});
  };
  refused("gamma", cert(root, "delta", key("gamma")), "the certificate is for delta, not gamma");
  refused("gamma", cert(rogue, "gamma", key("gamma")), "untrusted CA");
  refused("gamma", cert(root, "gamma", key("gamma"), {}, kNb, kNow - 1), "expired");
  refused("gamma", cert(root, "gamma", key("revoked")), "revoked");
  refused("gamma", cert(root, "gamma", key("alpha")), "belongs to alpha");
  refused("gamma", "", "no certificate");
  refused("gamma", "garbage", "bad certificate");
  refused("self", cert(root, "self", key("self")), "own name");
  // A pinned name is judged by its pin only: a valid certificate of its
  // name for another key does not count.
  refused("alpha", cert(root, "alpha", key("alpha2")), "pinned here");
  Config no_ca = config();
  no_ca.peer_keys["alpha"] = {key_text("alpha")};
  auto t2 = load(no_ca);
  Key32 k{};
  EXPECT_FALSE(t2->check_cert_for("gamma", cert(root, "gamma", key("gamma")), kNow, k).ok);
}

}  // namespace
