// BoxKeyCache (box_keys.h): crypto_box with its shared key kept per pair of
// keys. What matters is that the wire does not change: its boxes are the
// bytes crypto_box_easy makes, and open where seal_box's do, both ways;
// then that a key is computed once per pair, the bound, and that keys are
// never confused. Also the node's RelayKeys (relay_keys.h) that use it.
#include "box_keys.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include "crypto.h"
#include "relay.h"
#include "relay_keys.h"
#include "temp_dir.h"
#include "trust.h"

namespace jsd {
namespace {

struct Pair {
  Key32 priv{}, pub{};
  Pair() {
    randombytes_buf(priv.data(), priv.size());
    crypto_scalarmult_base(pub.data(), priv.data());
  }
};

// About the size of a relayed job request.
std::string request200() {
  std::string s(200, '\0');
  randombytes_buf(s.data(), s.size());
  return s;
}

class BoxKeysTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(crypto_init(err)) << err;
  }
};

// The cache's box, made again by crypto_box_easy with its nonce: the same
// bytes, so a node with the cache and one without read each other.
TEST_F(BoxKeysTest, SealsTheBytesCryptoBoxEasyMakes) {
  Pair a, g;
  BoxKeyCache c;
  for (size_t n : {size_t(0), size_t(1), size_t(200), size_t(4096)}) {
    std::string plain = request200();
    plain.resize(n, 'x');
    std::string mine = c.seal(a.priv, g.pub, plain);
    ASSERT_EQ(mine.size(), n + kRelayBoxOverhead);
    std::string ref(n + crypto_box_MACBYTES, '\0');
    const auto* nonce = reinterpret_cast<const unsigned char*>(mine.data());
    ASSERT_EQ(
        crypto_box_easy(reinterpret_cast<unsigned char*>(ref.data()),
                        reinterpret_cast<const unsigned char*>(plain.data()), n, nonce, g.pub.data(), a.priv.data()),
        0);
    EXPECT_EQ(mine.substr(crypto_box_NONCEBYTES), ref) << n << " bytes";
  }
}

// Sealed with one, opened with the other, in both directions (originator
// to target and back), each end with and without the cache.
TEST_F(BoxKeysTest, OpensWhatSealBoxMakesAndTheOtherWayRound) {
  Pair alpha, gamma;
  BoxKeyCache at_alpha, at_gamma;
  std::string plain = request200(), got;
  // alpha -> gamma
  ASSERT_TRUE(at_gamma.open(gamma.priv, alpha.pub, seal_box(alpha.priv, gamma.pub, plain), got));
  EXPECT_EQ(got, plain);
  ASSERT_TRUE(open_box(gamma.priv, alpha.pub, at_alpha.seal(alpha.priv, gamma.pub, plain), got));
  EXPECT_EQ(got, plain);
  ASSERT_TRUE(at_gamma.open(gamma.priv, alpha.pub, at_alpha.seal(alpha.priv, gamma.pub, plain), got));
  EXPECT_EQ(got, plain);
  // gamma -> alpha
  ASSERT_TRUE(at_alpha.open(alpha.priv, gamma.pub, seal_box(gamma.priv, alpha.pub, plain), got));
  EXPECT_EQ(got, plain);
  ASSERT_TRUE(open_box(alpha.priv, gamma.pub, at_gamma.seal(gamma.priv, alpha.pub, plain), got));
  EXPECT_EQ(got, plain);
  // crypto_box's key is symmetric: one entry per end serves both ways.
  EXPECT_EQ(at_alpha.size(), 1u);
  EXPECT_EQ(at_gamma.size(), 1u);
}

// A box from anyone but the holder of the key it is opened with, one
// opened with the wrong key of ours, or one altered, does not open; a
// kept shared key does not make a wrong one open either.
TEST_F(BoxKeysTest, WrongKeysAndAlteredBoxesDoNotOpen) {
  Pair alpha, beta, gamma;
  BoxKeyCache c;
  std::string plain = request200(), got = "left over";
  std::string sealed = c.seal(alpha.priv, gamma.pub, plain);
  ASSERT_TRUE(c.open(gamma.priv, alpha.pub, sealed, got));  // both pairs now kept
  EXPECT_FALSE(c.open(gamma.priv, beta.pub, sealed, got));  // not from beta
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(c.open(beta.priv, alpha.pub, sealed, got));  // not for beta
  EXPECT_FALSE(open_box(gamma.priv, beta.pub, sealed, got));
  // beta seals claiming to be alpha: gamma opens with alpha's key, refuses.
  EXPECT_FALSE(c.open(gamma.priv, alpha.pub, c.seal(beta.priv, gamma.pub, plain), got));
  EXPECT_FALSE(c.open(gamma.priv, alpha.pub, seal_box(beta.priv, gamma.pub, plain), got));
  for (size_t i = 0; i < sealed.size(); i += 7) {
    std::string bad = sealed;
    bad[i] ^= 0x20;
    EXPECT_FALSE(c.open(gamma.priv, alpha.pub, bad, got)) << "byte " << i;
  }
  EXPECT_FALSE(c.open(gamma.priv, alpha.pub, sealed.substr(0, kRelayBoxOverhead - 1), got));
  EXPECT_FALSE(c.open(gamma.priv, alpha.pub, sealed.substr(0, sealed.size() - 1), got));
  ASSERT_TRUE(c.open(gamma.priv, alpha.pub, sealed, got));
  EXPECT_EQ(got, plain);
}

// The point of it: one X25519 multiplication per pair of keys, not per
// message; a different key of ours (a reload) is a different pair.
TEST_F(BoxKeysTest, ComputesEachPairOnce) {
  Pair alpha, alpha2, gamma, delta;
  BoxKeyCache c;
  std::string plain = request200(), got;
  for (int i = 0; i < 50; ++i) ASSERT_FALSE(c.seal(alpha.priv, gamma.pub, plain).empty());
  EXPECT_EQ(c.computed(), 1u);
  ASSERT_TRUE(c.open(alpha.priv, delta.pub, seal_box(delta.priv, alpha.pub, plain), got));
  ASSERT_TRUE(c.open(alpha.priv, delta.pub, seal_box(delta.priv, alpha.pub, plain), got));
  EXPECT_EQ(c.computed(), 2u);
  // Same peer key, another key of ours: its own shared key, not alpha's.
  std::string sealed2 = c.seal(alpha2.priv, gamma.pub, plain);
  EXPECT_EQ(c.computed(), 3u);
  EXPECT_TRUE(open_box(gamma.priv, alpha2.pub, sealed2, got));
  EXPECT_FALSE(open_box(gamma.priv, alpha.pub, sealed2, got));
  EXPECT_EQ(c.size(), 3u);
  c.clear();
  EXPECT_EQ(c.size(), 0u);
  ASSERT_FALSE(c.seal(alpha.priv, gamma.pub, plain).empty());
  EXPECT_EQ(c.computed(), 4u);
}

// At most max entries; the least recently used goes first, so the peers a
// hub talks to all the time stay.
TEST_F(BoxKeysTest, KeepsAtMostItsBoundDroppingTheLeastRecentlyUsed) {
  Pair me, p[5];
  BoxKeyCache c(3);
  std::string plain = request200();
  for (int i = 0; i < 3; ++i) c.seal(me.priv, p[i].pub, plain);
  c.seal(me.priv, p[0].pub, plain);  // p[0] used again: p[1] is now the oldest
  c.seal(me.priv, p[3].pub, plain);  // drops p[1]
  EXPECT_EQ(c.size(), 3u);
  size_t before = c.computed();
  c.seal(me.priv, p[0].pub, plain);
  c.seal(me.priv, p[2].pub, plain);
  c.seal(me.priv, p[3].pub, plain);
  EXPECT_EQ(c.computed(), before);  // all three kept
  c.seal(me.priv, p[1].pub, plain);
  EXPECT_EQ(c.computed(), before + 1);  // p[1] was dropped
  EXPECT_EQ(c.size(), 3u);
  for (int i = 0; i < 5; ++i) {
    std::string got;
    EXPECT_TRUE(open_box(p[i].priv, me.pub, c.seal(me.priv, p[i].pub, plain), got)) << i;
  }
  EXPECT_EQ(c.size(), 3u);
}

// A low-order public key gives no shared key: nothing is sealed for it,
// nothing opens with it, nothing is kept (as crypto_box_easy refuses it).
TEST_F(BoxKeysTest, RefusesALowOrderKeyAndKeepsNothing) {
  Pair me;
  Key32 zero{};
  BoxKeyCache c;
  EXPECT_TRUE(seal_box(me.priv, zero, "x").empty());
  EXPECT_TRUE(c.seal(me.priv, zero, "x").empty());
  std::string got;
  EXPECT_FALSE(c.open(me.priv, zero, std::string(100, '\0'), got));
  EXPECT_EQ(c.size(), 0u);
}

// The listener's RelayKeys: alpha seals for gamma with its pinned key,
// gamma opens with alpha's, many times (the cache), and a node seal_box
// alone sealed for is read the same.
TEST_F(BoxKeysTest, NodeRelayKeysSealAndOpenThroughTheCache) {
  jsd_test::TempDir dir("boxkeys");
  std::string err;
  Key32 apub{}, gpub{}, apriv{}, gpriv{};
  ASSERT_TRUE(gen_node_key_file(dir.file("a.key"), apub, err)) << err;
  ASSERT_TRUE(gen_node_key_file(dir.file("g.key"), gpub, err)) << err;
  ASSERT_TRUE(load_node_key(dir.file("a.key"), apriv, apub, err)) << err;
  ASSERT_TRUE(load_node_key(dir.file("g.key"), gpriv, gpub, err)) << err;
  Pair beta;  // the gateway between them: a direct peer needs a key too
  Config ca, cg;
  ca.node = "alpha";
  ca.key_file = dir.file("a.key");
  ca.state_dir = dir.path;
  ca.via["gamma"] = "beta";
  ca.peers["beta"] = {"127.0.0.3", 4455};
  ca.peer_keys["gamma"] = {key_to_text(gpub)};
  ca.peer_keys["beta"] = {key_to_text(beta.pub)};
  cg.node = "gamma";
  cg.key_file = dir.file("g.key");
  cg.state_dir = dir.path;
  cg.via["alpha"] = "beta";
  cg.peers["beta"] = {"127.0.0.3", 4455};
  cg.peer_keys["alpha"] = {key_to_text(apub)};
  cg.peer_keys["beta"] = {key_to_text(beta.pub)};
  Trust ta, tg;
  std::vector<std::string> errors;
  ASSERT_TRUE(ta.load(ca, errors, 0)) << (errors.empty() ? "" : errors.front());
  ASSERT_TRUE(tg.load(cg, errors, 0)) << (errors.empty() ? "" : errors.front());
  NodeRelayKeys at_alpha(
      ca, [&]() -> const Trust& { return ta; }, nullptr);
  NodeRelayKeys at_gamma(
      cg, [&]() -> const Trust& { return tg; }, nullptr);
  std::string plain = request200(), sealed, got, fp;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(at_alpha.seal("gamma", plain, sealed, err)) << err;
    ASSERT_TRUE(at_gamma.open("alpha", "", sealed, got, fp, err)) << err;
    EXPECT_EQ(got, plain);
    EXPECT_EQ(fp, key_fingerprint(apub));
    ASSERT_TRUE(open_box(gpriv, apub, sealed, got));  // the wire as before
  }
  ASSERT_TRUE(at_gamma.open("alpha", "", seal_box(apriv, gpub, plain), got, fp, err)) << err;
  EXPECT_EQ(got, plain);
  at_gamma.forget_shared_keys();
  ASSERT_TRUE(at_gamma.open("alpha", "", sealed, got, fp, err)) << err;
  EXPECT_FALSE(at_gamma.open("alpha", "", seal_box(gpriv, gpub, plain), got, fp, err));
  EXPECT_FALSE(at_alpha.seal("delta", plain, sealed, err));
}

Key32 apriv_of(const std::string& file) {
  Key32 priv{}, pub{};
  std::string err;
  EXPECT_TRUE(load_node_key(file, priv, pub, err)) << err;
  return priv;
}

// Nodes that know each other only by certificate (trusted_cas, no key
// pinned either way): alpha learns gamma's key from gamma's certificate,
// gamma opens alpha's box with the key alpha's certificate gives; a
// certificate for another name, or none, gets nowhere.
TEST_F(BoxKeysTest, NodeRelayKeysLearnKeysFromCertificates) {
  jsd_test::TempDir dir("boxkeys");
  std::string err;
  Key32 capub{}, apub{}, gpub{};
  CaKey root;
  ASSERT_TRUE(gen_ca_file(dir.file("root.ca"), capub, err)) << err;
  ASSERT_TRUE(load_ca_key(dir.file("root.ca"), root, err)) << err;
  ASSERT_TRUE(gen_node_key_file(dir.file("a.key"), apub, err)) << err;
  ASSERT_TRUE(gen_node_key_file(dir.file("g.key"), gpub, err)) << err;
  int64_t now = int64_t(wall_time());
  auto certify = [&](const std::string& name, const Key32& key, const std::string& file) {
    Cert c;
    c.name = name;
    c.groups = {"ops"};
    c.key = key;
    c.not_before = now - 3600;
    c.not_after = now + 86400;
    std::string text = sign_cert(root, c);
    EXPECT_FALSE(text.empty());
    FILE* f = fopen(dir.file(file).c_str(), "w");
    fputs((text + "\n").c_str(), f);
    fclose(f);
    return text;
  };
  std::string acert = certify("alpha", apub, "a.cert"), gcert = certify("gamma", gpub, "g.cert");
  Pair beta;
  Config ca, cg;
  ca.node = "alpha";
  ca.key_file = dir.file("a.key");
  ca.cert_file = dir.file("a.cert");
  ca.state_dir = dir.path;
  ca.via["gamma"] = "beta";
  ca.peers["beta"] = {"127.0.0.3", 4455};
  ca.peer_keys["beta"] = {key_to_text(beta.pub)};
  ca.trusted_cas = {key_to_text(capub)};
  cg = ca;
  cg.node = "gamma";
  cg.key_file = dir.file("g.key");
  cg.cert_file = dir.file("g.cert");
  cg.via.clear();  // alpha is not in gamma's configuration at all
  Trust ta, tg;
  std::vector<std::string> errors;
  ASSERT_TRUE(ta.load(ca, errors, now)) << (errors.empty() ? "" : errors.front());
  ASSERT_TRUE(tg.load(cg, errors, now)) << (errors.empty() ? "" : errors.front());
  NodeRelayKeys at_alpha(
      ca, [&]() -> const Trust& { return ta; }, nullptr);
  NodeRelayKeys at_gamma(
      cg, [&]() -> const Trust& { return tg; }, nullptr);
  std::vector<std::string> opened;
  at_gamma.on_opened = [&](const std::string& origin, const NodeRelayKeys::Opened& o) {
    opened.push_back(origin + " " + o.key_fp + (o.by_cert ? " cert " : " pinned ") +
                     (o.groups.empty() ? "" : o.groups[0]) + (o.ca == key_to_text(capub) ? " ca" : " ?") +
                     (o.not_after == now + 86400 ? " end" : " ?"));
  };
  EXPECT_EQ(at_alpha.own_cert(), acert);
  std::string plain = request200(), sealed, got, fp;
  EXPECT_TRUE(at_alpha.needs_cert("gamma"));
  EXPECT_FALSE(at_alpha.needs_cert("beta"));  // pinned
  EXPECT_FALSE(at_alpha.seal("gamma", plain, sealed, err));
  EXPECT_FALSE(at_alpha.learn_cert("gamma", acert, err));  // alpha's, offered as gamma's
  EXPECT_NE(err.find("not gamma"), std::string::npos) << err;
  EXPECT_TRUE(at_alpha.needs_cert("gamma"));
  ASSERT_TRUE(at_alpha.learn_cert("gamma", gcert, err)) << err;
  EXPECT_FALSE(at_alpha.needs_cert("gamma"));
  for (int i = 0; i < 2; ++i) {  // the second time from the checked certificate
    ASSERT_TRUE(at_alpha.seal("gamma", plain, sealed, err)) << err;
    ASSERT_TRUE(at_gamma.open("alpha", acert, sealed, got, fp, err)) << err;
    EXPECT_EQ(got, plain);
    EXPECT_EQ(fp, key_fingerprint(apub));
  }
  ASSERT_EQ(opened.size(), 2u);
  EXPECT_EQ(opened[0], "alpha " + key_fingerprint(apub) + " cert ops ca end");
  EXPECT_FALSE(at_gamma.open("alpha", "", sealed, got, fp, err));
  EXPECT_NE(err.find("no certificate"), std::string::npos) << err;
  EXPECT_FALSE(at_gamma.open("alpha", gcert, sealed, got, fp, err));  // gamma's certificate, claiming alpha
  EXPECT_FALSE(at_gamma.open("beta", acert, sealed, got, fp, err));   // beta is pinned: its key, not a certificate
  EXPECT_FALSE(at_alpha.cert_stale("gamma"));                         // just learnt
  // Forgotten at a reload: asked for again.
  at_alpha.forget_shared_keys();
  EXPECT_TRUE(at_alpha.needs_cert("gamma"));
  // A name pinned here whose keys are all revoked is not looked up, and
  // its certificate does not open its requests: the pin decides.
  Config cr = cg;
  cr.peer_keys["alpha"] = {key_to_text(apub)};
  cr.revoked = {key_to_text(apub)};
  cr.via["alpha"] = "beta";
  Trust tr;
  ASSERT_TRUE(tr.load(cr, errors, now)) << (errors.empty() ? "" : errors.front());
  NodeRelayKeys revoking(
      cr, [&]() -> const Trust& { return tr; }, nullptr);
  EXPECT_FALSE(revoking.needs_cert("alpha"));
  EXPECT_FALSE(revoking.seal("alpha", plain, sealed, err));
  EXPECT_NE(err.find("revoked"), std::string::npos) << err;
  EXPECT_FALSE(revoking.open("alpha", acert, seal_box(apriv_of(dir.file("a.key")), gpub, plain), got, fp, err));
  EXPECT_NE(err.find("revoked"), std::string::npos) << err;
  EXPECT_FALSE(revoking.learn_cert("alpha", acert, err));
}

}  // namespace
}  // namespace jsd
