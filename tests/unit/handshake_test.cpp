// The link handshake: LinkInitiator and LinkResponder driven against each
// other in memory, frames passed as strings.
#include "link/handshake.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "temp_dir.h"

using namespace jsd;

namespace {

// A fresh directory, removed with everything in it at scope exit.
struct TempDir : jsd_test::TempDir {
  TempDir() : jsd_test::TempDir("handshake") {}
};

// The initiator checks certificates at the wall clock: a window covering all
// representable time keeps the tests independent of the date.
constexpr int64_t kForever = 253402300799;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += x + "\n";
  return s;
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

using IStep = LinkInitiator::Step;
using RStep = LinkResponder::Step;

const char* name(IStep s) {
  switch (s) {
    case IStep::send:
      return "send";
    case IStep::done:
      return "done";
    case IStep::refused:
      return "refused";
    case IStep::failed:
      return "failed";
  }
  return "?";
}
const char* name(RStep s) {
  switch (s) {
    case RStep::send:
      return "send";
    case RStep::hello:
      return "hello";
    case RStep::refuse:
      return "refuse";
    case RStep::failed:
      return "failed";
  }
  return "?";
}

// What a node needs for the handshake.
struct NodeOpts {
  std::string key;                // key file base name; default: the node name
  bool cert = true;               // a certificate from the test CA
  std::string psk;                // psk file base name; empty: none
  std::vector<std::string> pins;  // peers whose keys are pinned
};
NodeOpts pins(std::vector<std::string> p) {
  NodeOpts o;
  o.pins = std::move(p);
  return o;
}
NodeOpts no_cert() {
  NodeOpts o;
  o.cert = false;
  return o;
}
NodeOpts with_psk(std::string psk) {
  NodeOpts o;
  o.psk = std::move(psk);
  return o;
}
NodeOpts with_key(std::string key) {
  NodeOpts o;
  o.key = std::move(key);
  return o;
}

class LinkHandshake : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    Key32 pub{};
    ASSERT_TRUE(gen_ca_file(dir_.file("ca"), pub, err)) << err;
    ASSERT_TRUE(load_ca_key(dir_.file("ca"), ca_, err)) << err;
    ASSERT_TRUE(gen_psk_file(dir_.file("psk"), err)) << err;
    ASSERT_TRUE(gen_psk_file(dir_.file("psk2"), err)) << err;
  }
  void TearDown() override { ca_.wipe(); }

  Key32 key(const std::string& base) {
    auto it = keys_.find(base);
    if (it != keys_.end()) return it->second;
    Key32 pub{};
    std::string err;
    EXPECT_TRUE(gen_node_key_file(dir_.file(base + ".key"), pub, err)) << err;
    keys_[base] = pub;
    return pub;
  }

  // A node's Trust, loaded from a Config like the real thing.
  const Trust& node(const std::string& nodename, NodeOpts o = {}) {
    if (o.key.empty()) o.key = nodename;
    Config c;
    c.node = nodename;
    key(o.key);
    c.key_file = dir_.file(o.key + ".key");
    c.trusted_cas = {key_to_text(ca_.pub)};
    if (o.cert) {
      Cert ct;
      ct.name = nodename;
      ct.groups = {"g-" + nodename};
      ct.key = key(o.key);
      ct.not_before = 0;
      ct.not_after = kForever;
      std::string text = sign_cert(ca_, ct), path = dir_.file(o.key + ".crt");
      EXPECT_FALSE(text.empty());
      std::ofstream(path, std::ios::binary | std::ios::trunc) << text << "\n";
      c.cert_file = path;
    }
    if (!o.psk.empty()) c.psk_file = dir_.file(o.psk);
    for (auto& p : o.pins) c.peer_keys[p] = {key_to_text(key(p))};
    trusts_.push_back(std::make_unique<Trust>());
    std::vector<std::string> errors;
    EXPECT_TRUE(trusts_.back()->load(c, errors, now())) << join(errors);
    return *trusts_.back();
  }

  static int64_t now() { return static_cast<int64_t>(time(nullptr)); }
  static Hello hello_of(const std::string& n) { return Hello{n, "127.0.0.2:4455", "", ""}; }

  // One complete attempt, the responder accepting every hello.
  struct Run {
    IStep is = IStep::failed;
    RStep rs = RStep::failed;  // the responder's last step
    std::string ierr, rerr, refusal;
    int frames = 0;  // frames the initiator sent
    bool ik = false;
    uint16_t port = 0;
    uint64_t server_max_frame = 0;
    std::string server_node;
    Hello hello;
    Key32 peer_key{};
    SessionKeys ikeys, rkeys;
  };
  Run run(const Trust& a, const Trust& b, std::optional<Key32> server_key, const std::string& target = "beta",
          uint16_t port = 50001, uint64_t max_frame = 0) {
    Run r;
    LinkInitiator ini(a, hello_of("alpha"), target, server_key);
    LinkResponder res(b, "beta");
    std::string f, out;
    if (!ini.first(f, r.ierr)) return r;
    r.ik = ini.used_ik();
    for (int round = 0; round < 4; ++round) {
      ++r.frames;
      r.rs = res.on_frame(f, out, r.rerr);
      if (r.rs == RStep::failed) return r;
      if (r.rs == RStep::refuse) r.refusal = out;
      if (r.rs == RStep::hello) {
        r.hello = res.hello();
        r.peer_key = res.peer_key();
        EXPECT_TRUE(res.accept(port, out, r.rerr, max_frame)) << r.rerr;
        r.rkeys = res.take_keys();
      }
      std::string next;
      r.is = ini.on_frame(out, next, r.ierr);
      if (r.is != IStep::send) break;
      f = next;
    }
    if (r.is == IStep::done) {
      r.port = ini.port();
      r.server_node = ini.server_node();
      r.server_max_frame = ini.server_max_frame();
      r.ikeys = ini.take_keys();
    }
    return r;
  }

  // Both ends' channels, built the way the node and the queue-server do.
  static void expect_channels_talk(const SessionKeys& ik, const SessionKeys& rk) {
    SecureChannel ini(ik.c2s, ik.c2s_n, ik.s2c, ik.s2c_n), res(rk.s2c, rk.s2c_n, rk.c2s, rk.c2s_n);
    std::string f, plain;
    for (int i = 0; i < 3; ++i) {
      f.clear();
      ini.seal("ticket " + std::to_string(i), f);
      ASSERT_TRUE(res.open(f, plain)) << i;
      EXPECT_EQ(plain, "ticket " + std::to_string(i));
      f.clear();
      res.seal("reply " + std::to_string(i), f);
      ASSERT_TRUE(ini.open(f, plain)) << i;
      EXPECT_EQ(plain, "reply " + std::to_string(i));
    }
  }

  static void expect_same_keys(const SessionKeys& ik, const SessionKeys& rk) {
    EXPECT_EQ(ik.c2s, rk.c2s);
    EXPECT_EQ(ik.s2c, rk.s2c);
    EXPECT_EQ(ik.c2s_n, rk.c2s_n);
    EXPECT_EQ(ik.s2c_n, rk.s2c_n);
    EXPECT_NE(ik.c2s, ik.s2c);
    EXPECT_NE(ik.c2s, Key{});
    EXPECT_NE(ik.s2c, Key{});
  }

  TempDir dir_;
  CaKey ca_;
  std::map<std::string, Key32> keys_;
  std::vector<std::unique_ptr<Trust>> trusts_;
};

}  // namespace

TEST_F(LinkHandshake, IkWithPinnedKey) {
  const Trust& a = node("alpha", pins({"beta"}));
  const Trust& b = node("beta", pins({"alpha"}));
  Run r = run(a, b, key("beta"));
  ASSERT_EQ(r.is, IStep::done) << name(r.is) << " " << r.ierr << " / " << name(r.rs) << " " << r.rerr;
  EXPECT_TRUE(r.ik);
  EXPECT_EQ(r.frames, 1);  // one round trip
  EXPECT_EQ(r.port, 50001);
  EXPECT_EQ(r.server_node, "beta");
  EXPECT_EQ(r.hello.node, "alpha");
  EXPECT_EQ(r.hello.to, "beta");
  EXPECT_EQ(r.hello.addr, "127.0.0.2:4455");
  EXPECT_EQ(r.hello.cert, a.cert_text());
  EXPECT_EQ(r.peer_key, key("alpha"));
  PeerVerdict v = b.check_peer(r.hello.node, r.peer_key, r.hello.cert, now());
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_FALSE(v.by_cert);
  expect_same_keys(r.ikeys, r.rkeys);
  EXPECT_EQ(r.ikeys.c2s_n, 0u);
  EXPECT_EQ(r.ikeys.s2c_n, 0u);
  expect_channels_talk(r.ikeys, r.rkeys);
}

TEST_F(LinkHandshake, XxWithCertifiedNodes) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  Run r = run(a, b, std::nullopt);
  ASSERT_EQ(r.is, IStep::done) << name(r.is) << " " << r.ierr << " / " << name(r.rs) << " " << r.rerr;
  EXPECT_FALSE(r.ik);
  EXPECT_EQ(r.frames, 2);  // X, y
  EXPECT_EQ(r.port, 50001);
  EXPECT_EQ(r.server_node, "beta");
  EXPECT_EQ(r.hello.node, "alpha");
  EXPECT_EQ(r.hello.to, "beta");
  EXPECT_EQ(r.peer_key, key("alpha"));
  ASSERT_FALSE(r.hello.cert.empty());
  PeerVerdict v = b.check_peer(r.hello.node, r.peer_key, r.hello.cert, now());
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_TRUE(v.by_cert);
  EXPECT_EQ(v.groups, std::vector<std::string>{"g-alpha"});
  expect_same_keys(r.ikeys, r.rkeys);
  EXPECT_EQ(r.ikeys.c2s_n, 0u);
  EXPECT_EQ(r.ikeys.s2c_n, 1u);  // the responder's accept used s2c nonce 0
  expect_channels_talk(r.ikeys, r.rkeys);
}

// The responder tells its max_frame with the port (IK and XX), so that the
// initiator's client keeps back an event the queue-server would not read;
// an older responder says nothing (0: unknown).
TEST_F(LinkHandshake, TheAcceptTellsTheResponderMaxFrame) {
  const Trust& a = node("alpha", pins({"beta"}));
  const Trust& b = node("beta", pins({"alpha"}));
  Run ik = run(a, b, key("beta"), "beta", 50001, 1048576);
  ASSERT_EQ(ik.is, IStep::done) << ik.ierr << " / " << ik.rerr;
  EXPECT_TRUE(ik.ik);
  EXPECT_EQ(ik.server_max_frame, 1048576u);
  Run xx = run(node("alpha"), node("beta"), std::nullopt, "beta", 50002, 65536);
  ASSERT_EQ(xx.is, IStep::done) << xx.ierr << " / " << xx.rerr;
  EXPECT_FALSE(xx.ik);
  EXPECT_EQ(xx.server_max_frame, 65536u);
  EXPECT_EQ(run(a, b, key("beta")).server_max_frame, 0u);
  // A value no config allows is taken as unsaid (no overflow in the check).
  EXPECT_EQ(run(a, b, key("beta"), "beta", 50003, UINT64_MAX).server_max_frame, 0u);
  EXPECT_EQ(run(a, b, key("beta"), "beta", 50004, 100).server_max_frame, 0u);
}

TEST_F(LinkHandshake, XxWithPinnedResponderKey) {
  // An initiator that does not pass the key (bare address) still accepts a pinned responder.
  const Trust& a = node("alpha", pins({"beta"}));
  const Trust& b = node("beta", no_cert());
  Run r = run(a, b, std::nullopt);
  ASSERT_EQ(r.is, IStep::done) << r.ierr << " / " << r.rerr;
  expect_same_keys(r.ikeys, r.rkeys);
}

TEST_F(LinkHandshake, XxInitiatorRefusesUncertifiedResponder) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta", no_cert());
  Run r = run(a, b, std::nullopt);
  EXPECT_EQ(r.is, IStep::failed);
  EXPECT_EQ(r.frames, 1);  // alpha never sent its hello
  EXPECT_TRUE(contains(r.ierr, "cannot authenticate beta")) << r.ierr;
  EXPECT_TRUE(contains(r.ierr, "no certificate presented")) << r.ierr;
}

TEST_F(LinkHandshake, XxInitiatorRefusesAnotherNodeThanTarget) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  Run r = run(a, b, std::nullopt, "gamma");
  EXPECT_EQ(r.is, IStep::failed);
  EXPECT_EQ(r.frames, 1);
  EXPECT_TRUE(contains(r.ierr, "it is node 'beta', not 'gamma'")) << r.ierr;
}

TEST_F(LinkHandshake, XxResponderKeyPinnedUnderAnotherName) {
  // beta's answer comes with beta's key, but alpha knows that key as gamma's.
  const Trust& a = node("alpha", pins({"gamma"}));
  const Trust& b = node("beta", with_key("gamma"));
  Run r = run(a, b, std::nullopt);
  EXPECT_EQ(r.is, IStep::failed);
  EXPECT_TRUE(contains(r.ierr, "key belongs to gamma, not beta")) << r.ierr;
}

TEST_F(LinkHandshake, PskOnBothSides) {
  for (bool ik : {true, false}) {
    const Trust& a = node("alpha", with_psk("psk"));
    const Trust& b = node("beta", with_psk("psk"));
    ASSERT_TRUE(a.has_psk());
    Run r = run(a, b, ik ? std::optional<Key32>(key("beta")) : std::nullopt);
    ASSERT_EQ(r.is, IStep::done) << ik << " " << r.ierr << " / " << r.rerr;
    EXPECT_EQ(r.ik, ik);
    expect_same_keys(r.ikeys, r.rkeys);
    EXPECT_EQ(r.ikeys.s2c_n, ik ? 0u : 1u);
    expect_channels_talk(r.ikeys, r.rkeys);
  }
}

TEST_F(LinkHandshake, PskOnOneSideOnlyRefused) {
  for (bool ik : {true, false}) {
    for (bool initiator_has_psk : {true, false}) {
      SCOPED_TRACE(std::string(ik ? "IK" : "XX") + (initiator_has_psk ? ", initiator has psk" : ", responder has psk"));
      const Trust& a = node("alpha", with_psk(initiator_has_psk ? "psk" : ""));
      const Trust& b = node("beta", with_psk(initiator_has_psk ? "" : "psk"));
      Run r = run(a, b, ik ? std::optional<Key32>(key("beta")) : std::nullopt);
      EXPECT_EQ(r.rs, RStep::refuse);
      EXPECT_EQ(r.frames, 1);  // refused at the first message, before any crypto
      EXPECT_EQ(r.refusal.substr(0, 1), "R");
      EXPECT_TRUE(contains(r.rerr, "psk")) << r.rerr;
      EXPECT_EQ(r.is, IStep::refused);
      EXPECT_TRUE(contains(r.ierr, "psk")) << r.ierr;
      EXPECT_EQ(r.ierr, initiator_has_psk ? "unexpected psk" : "missing psk");
    }
  }
}

TEST_F(LinkHandshake, DifferentPsksRefusedXx) {
  // XXpsk3: the psk is mixed in at alpha's hello (msg3), so beta refuses it.
  const Trust& a = node("alpha", with_psk("psk"));
  const Trust& b = node("beta", with_psk("psk2"));
  Run r = run(a, b, std::nullopt);
  EXPECT_EQ(r.rs, RStep::refuse);
  EXPECT_EQ(r.frames, 2);
  EXPECT_EQ(r.refusal, "Rhandshake failed");
  EXPECT_EQ(r.is, IStep::refused);
  EXPECT_EQ(r.ierr, "handshake failed");
}

TEST_F(LinkHandshake, DifferentPsksFailIk) {
  // IKpsk1: the psk is mixed in within msg1, so beta refuses a wrong psk
  // before it answers or acts on anything; alpha learns why.
  const Trust& a = node("alpha", with_psk("psk"));
  const Trust& b = node("beta", with_psk("psk2"));
  Run r = run(a, b, key("beta"));
  EXPECT_EQ(r.rs, RStep::refuse);
  EXPECT_EQ(r.refusal, "Rhandshake failed");
  EXPECT_EQ(r.is, IStep::refused);
  EXPECT_EQ(r.ierr, "handshake failed");
  EXPECT_EQ(r.port, 0);
}

TEST_F(LinkHandshake, ResponderWithAnotherKeyThanPinnedRefuses) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta", with_key("beta-new"));  // beta rotated its key; alpha still pins the old one
  Run r = run(a, b, key("beta"));
  EXPECT_EQ(r.rs, RStep::refuse);
  EXPECT_EQ(r.refusal, "Rhandshake failed");
  EXPECT_TRUE(contains(r.rerr, "wrong key pinned")) << r.rerr;
  EXPECT_EQ(r.is, IStep::refused);
  EXPECT_EQ(r.ierr, "handshake failed");
  // With the new key it works.
  r = run(a, b, key("beta-new"));
  EXPECT_EQ(r.is, IStep::done) << r.ierr;
}

TEST_F(LinkHandshake, TamperedIkMessage1NeverGivesAHello) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  LinkInitiator ini(a, hello_of("alpha"), "beta", key("beta"));
  std::string m1, err, out;
  ASSERT_TRUE(ini.first(m1, err)) << err;
  {
    LinkResponder res(b, "beta");  // control: the genuine message opens
    ASSERT_EQ(res.on_frame(m1, out, err), RStep::hello) << err;
  }
  for (size_t i = 0; i < m1.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = m1;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      LinkResponder res(b, "beta");
      RStep s = res.on_frame(bad, out, err);
      if (bit == 0 || i != 1) {
        // Every bit of the type and of the Noise message, and the psk flag, matters.
        EXPECT_TRUE(s == RStep::refuse || s == RStep::failed) << "offset " << i << " bit " << bit << ": " << name(s);
      }
      if (s == RStep::hello) {
        // Only the unused flag bits are not covered (see the report); then it
        // must still be alpha's genuine hello.
        EXPECT_EQ(res.peer_key(), key("alpha")) << "offset " << i << " bit " << bit;
        EXPECT_EQ(res.hello().node, "alpha");
        EXPECT_GT(res.hello().time, 0u);  // the initiator always sends its time
      }
      if (s == RStep::refuse) {
        EXPECT_EQ(out.substr(0, 1), "R");
      }
    }
  }
  // Truncations of every length, and extensions, do not open either.
  for (size_t n = 0; n < m1.size(); ++n) {
    LinkResponder res(b, "beta");
    RStep s = res.on_frame(std::string_view(m1).substr(0, n), out, err);
    EXPECT_TRUE(s == RStep::refuse || s == RStep::failed) << "length " << n << ": " << name(s);
  }
  LinkResponder res(b, "beta");
  RStep s = res.on_frame(m1 + "x", out, err);
  EXPECT_TRUE(s == RStep::refuse || s == RStep::failed) << name(s);
}

TEST_F(LinkHandshake, TamperedXxMessagesFail) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  // msg2 ('x') altered on the way to the initiator.
  {
    LinkInitiator ini0(a, hello_of("alpha"), "beta", std::nullopt);
    LinkResponder res0(b, "beta");
    std::string m1, m2, err, out;
    ASSERT_TRUE(ini0.first(m1, err));
    ASSERT_EQ(res0.on_frame(m1, m2, err), RStep::send) << err;
    for (size_t i = 1; i < m2.size(); ++i) {
      LinkInitiator ini(a, hello_of("alpha"), "beta", std::nullopt);
      LinkResponder res(b, "beta");
      std::string f1, f2;
      ASSERT_TRUE(ini.first(f1, err));
      ASSERT_EQ(res.on_frame(f1, f2, err), RStep::send);
      f2[i] = static_cast<char>(f2[i] ^ 1);
      EXPECT_EQ(ini.on_frame(f2, out, err), IStep::failed) << "offset " << i;
    }
  }
  // msg3 ('y') altered on the way to the responder.
  LinkInitiator ini0(a, hello_of("alpha"), "beta", std::nullopt);
  std::string m1, err;
  ASSERT_TRUE(ini0.first(m1, err));
  size_t m3_size = 0;
  {
    LinkResponder res(b, "beta");
    LinkInitiator ini(a, hello_of("alpha"), "beta", std::nullopt);
    std::string f1, f2, f3;
    ASSERT_TRUE(ini.first(f1, err));
    ASSERT_EQ(res.on_frame(f1, f2, err), RStep::send);
    ASSERT_EQ(ini.on_frame(f2, f3, err), IStep::send);
    m3_size = f3.size();
  }
  for (size_t i = 1; i < m3_size; ++i) {
    LinkResponder res(b, "beta");
    LinkInitiator ini(a, hello_of("alpha"), "beta", std::nullopt);
    std::string f1, f2, f3, out;
    ASSERT_TRUE(ini.first(f1, err));
    ASSERT_EQ(res.on_frame(f1, f2, err), RStep::send);
    ASSERT_EQ(ini.on_frame(f2, f3, err), IStep::send);
    f3[i] = static_cast<char>(f3[i] ^ 1);
    RStep s = res.on_frame(f3, out, err);
    EXPECT_TRUE(s == RStep::refuse || s == RStep::failed) << "offset " << i << ": " << name(s);
  }
}

TEST_F(LinkHandshake, ForgedAcceptRefused) {
  // The initiator drops a 'P' (XX) or 'A' (IK) that was altered.
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  for (bool ik : {true, false}) {
    SCOPED_TRACE(ik ? "IK" : "XX");
    LinkInitiator ini(a, hello_of("alpha"), "beta", ik ? std::optional<Key32>(key("beta")) : std::nullopt);
    LinkResponder res(b, "beta");
    std::string f, out, err;
    ASSERT_TRUE(ini.first(f, err));
    RStep s = res.on_frame(f, out, err);
    if (!ik) {
      ASSERT_EQ(s, RStep::send);
      ASSERT_EQ(ini.on_frame(out, f, err), IStep::send);
      s = res.on_frame(f, out, err);
    }
    ASSERT_EQ(s, RStep::hello) << err;
    ASSERT_TRUE(res.accept(50001, out, err));
    out[out.size() - 1] = static_cast<char>(out[out.size() - 1] ^ 1);
    std::string next;
    EXPECT_EQ(ini.on_frame(out, next, err), IStep::failed);
    EXPECT_EQ(ini.port(), 0);
  }
}

TEST_F(LinkHandshake, ReplayedIkMessage1CannotBeUsed) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  LinkInitiator ini(a, hello_of("alpha"), "beta", key("beta"));
  LinkResponder res1(b, "beta");
  std::string m1, out, next, err;
  ASSERT_TRUE(ini.first(m1, err));
  ASSERT_EQ(res1.on_frame(m1, out, err), RStep::hello) << err;
  ASSERT_TRUE(res1.accept(50001, out, err));
  ASSERT_EQ(ini.on_frame(out, next, err), IStep::done) << err;
  SessionKeys ik = ini.take_keys(), rk1 = res1.take_keys();
  expect_same_keys(ik, rk1);

  // An eavesdropper replays msg1 to a fresh responder: it opens (IK msg1 has
  // no responder contribution), so the node must wait for the ticket...
  LinkResponder res2(b, "beta");
  std::string answer;
  ASSERT_EQ(res2.on_frame(m1, answer, err), RStep::hello) << err;
  EXPECT_EQ(res2.peer_key(), key("alpha"));
  EXPECT_EQ(res2.hello().node, "alpha");
  ASSERT_TRUE(res2.accept(50002, answer, err));
  SessionKeys rk2 = res2.take_keys();
  // ...and the replayer, lacking alpha's ephemeral private key, cannot use it:
  // the second session's keys are not the original's,
  EXPECT_NE(rk2.c2s, rk1.c2s);
  EXPECT_NE(rk2.s2c, rk1.s2c);
  // the original initiator's ticket, replayed too, does not open there,
  SecureChannel orig(ik.c2s, ik.c2s_n, ik.s2c, ik.s2c_n), replayed(rk2.s2c, rk2.s2c_n, rk2.c2s, rk2.c2s_n);
  std::string ticket, plain;
  orig.seal("ticket", ticket);
  EXPECT_FALSE(replayed.open(ticket, plain));
  // and the original initiator (already done) does not take the new answer.
  EXPECT_EQ(ini.on_frame(answer, next, err), IStep::failed);
}

TEST_F(LinkHandshake, FreshInitiatorPerAttempt) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  for (bool ik : {true, false}) {
    SCOPED_TRACE(ik ? "IK" : "XX");
    std::optional<Key32> sk = ik ? std::optional<Key32>(key("beta")) : std::nullopt;
    // Attempt 1 dies after the responder's first answer (the connection drops).
    std::string stale, err;
    SessionKeys dead_keys;
    {
      LinkInitiator ini(a, hello_of("alpha"), "beta", sk);
      LinkResponder res(b, "beta");
      std::string f;
      ASSERT_TRUE(ini.first(f, err));
      RStep s = res.on_frame(f, stale, err);
      if (ik) {
        ASSERT_EQ(s, RStep::hello) << err;
        ASSERT_TRUE(res.accept(50001, stale, err));
        dead_keys = res.take_keys();
      } else {
        ASSERT_EQ(s, RStep::send) << err;
      }
    }
    // Attempt 2, with a fresh initiator and responder, succeeds at once.
    Run r = run(a, b, sk);
    ASSERT_EQ(r.is, IStep::done) << r.ierr << " / " << r.rerr;
    EXPECT_EQ(r.frames, ik ? 1 : 2);
    expect_same_keys(r.ikeys, r.rkeys);
    if (ik) {
      EXPECT_NE(r.rkeys.c2s, dead_keys.c2s);
    }
    // The dead attempt's answer, arriving late at a new attempt, is refused.
    LinkInitiator ini3(a, hello_of("alpha"), "beta", sk);
    std::string f, next;
    ASSERT_TRUE(ini3.first(f, err));
    EXPECT_EQ(ini3.on_frame(stale, next, err), IStep::failed);
    // And that failed attempt does not affect the one after it either.
    r = run(a, b, sk);
    EXPECT_EQ(r.is, IStep::done) << r.ierr << " / " << r.rerr;
  }
}

TEST_F(LinkHandshake, InitiatorRejectsUnexpectedMessages) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  std::string f, out, err;
  auto fresh_ik = [&] {
    auto ini = std::make_unique<LinkInitiator>(a, hello_of("alpha"), "beta", key("beta"));
    EXPECT_TRUE(ini->first(f, err));
    return ini;
  };
  auto fresh_xx = [&] {
    auto ini = std::make_unique<LinkInitiator>(a, hello_of("alpha"), "beta", std::nullopt);
    EXPECT_TRUE(ini->first(f, err));
    return ini;
  };
  // Garbage and empty frames.
  for (const std::string& g : {std::string(), std::string("Z"), std::string("Zxxxx"), std::string(100, 'A')}) {
    EXPECT_EQ(fresh_ik()->on_frame(g, out, err), IStep::failed) << g;
    EXPECT_EQ(fresh_xx()->on_frame(g, out, err), IStep::failed) << g;
  }
  // A refusal is reported as such, whatever the state.
  EXPECT_EQ(fresh_ik()->on_frame("Rgo away", out, err), IStep::refused);
  EXPECT_EQ(err, "go away");
  EXPECT_EQ(fresh_xx()->on_frame("R", out, err), IStep::refused);

  // Get real answers of each kind from responders.
  std::string a_frame, x_frame, p_frame, y_frame;
  {
    auto ini = fresh_ik();
    LinkResponder res(b, "beta");
    ASSERT_EQ(res.on_frame(f, out, err), RStep::hello);
    ASSERT_TRUE(res.accept(50001, a_frame, err));
  }
  {
    auto ini = fresh_xx();
    LinkResponder res(b, "beta");
    ASSERT_EQ(res.on_frame(f, x_frame, err), RStep::send);
    ASSERT_EQ(ini->on_frame(x_frame, y_frame, err), IStep::send);
    ASSERT_EQ(res.on_frame(y_frame, out, err), RStep::hello);
    ASSERT_TRUE(res.accept(50001, p_frame, err));
    ASSERT_EQ(ini->on_frame(p_frame, out, err), IStep::done);
    // After done, nothing more is taken, not even the same accept again.
    EXPECT_EQ(ini->on_frame(p_frame, out, err), IStep::failed);
    EXPECT_EQ(ini->on_frame(x_frame, out, err), IStep::failed);
  }
  // Wrong kind for the pattern.
  EXPECT_EQ(fresh_ik()->on_frame(x_frame, out, err), IStep::failed);
  EXPECT_EQ(fresh_ik()->on_frame(p_frame, out, err), IStep::failed);
  EXPECT_EQ(fresh_xx()->on_frame(a_frame, out, err), IStep::failed);
  // XX: the accept before the answer.
  EXPECT_EQ(fresh_xx()->on_frame(p_frame, out, err), IStep::failed);
  // The initiator's own frames reflected back at it.
  EXPECT_EQ(fresh_xx()->on_frame(y_frame, out, err), IStep::failed);
  {
    auto ini = fresh_ik();
    std::string own = f;
    EXPECT_EQ(ini->on_frame(own, out, err), IStep::failed);
  }
  // An initiator used before first().
  LinkInitiator unstarted(a, hello_of("alpha"), "beta", key("beta"));
  EXPECT_EQ(unstarted.on_frame(a_frame, out, err), IStep::failed);
  EXPECT_EQ(unstarted.on_frame(x_frame, out, err), IStep::failed);
  // IK after done: a second accept.
  {
    auto ini = fresh_ik();
    LinkResponder res(b, "beta");
    std::string acc;
    ASSERT_EQ(res.on_frame(f, out, err), RStep::hello);
    ASSERT_TRUE(res.accept(50001, acc, err));
    ASSERT_EQ(ini->on_frame(acc, out, err), IStep::done);
    EXPECT_EQ(ini->on_frame(acc, out, err), IStep::failed);
  }
}

TEST_F(LinkHandshake, ResponderRejectsUnexpectedMessages) {
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  std::string out, err;
  // Real frames of each kind.
  std::string i_frame, x_frame, y_frame, a_frame, p_frame, x_answer;
  {
    LinkInitiator ini(a, hello_of("alpha"), "beta", key("beta"));
    ASSERT_TRUE(ini.first(i_frame, err));
    LinkResponder res(b, "beta");
    ASSERT_EQ(res.on_frame(i_frame, out, err), RStep::hello);
    ASSERT_TRUE(res.accept(50001, a_frame, err));
  }
  {
    LinkInitiator ini(a, hello_of("alpha"), "beta", std::nullopt);
    ASSERT_TRUE(ini.first(x_frame, err));
    LinkResponder res(b, "beta");
    ASSERT_EQ(res.on_frame(x_frame, x_answer, err), RStep::send);
    ASSERT_EQ(ini.on_frame(x_answer, y_frame, err), IStep::send);
    ASSERT_EQ(res.on_frame(y_frame, out, err), RStep::hello);
    ASSERT_TRUE(res.accept(50001, p_frame, err));
  }
  auto first_frame = [&](const std::string& f) {
    LinkResponder res(b, "beta");
    return res.on_frame(f, out, err);
  };
  // Short, unknown, or not a first message.
  for (const std::string& g : {std::string(), std::string("I"), std::string("X"), std::string("Zz"),
                               std::string("R\x00", 2), y_frame, a_frame, p_frame, x_answer}) {
    EXPECT_EQ(first_frame(g), RStep::failed) << name(first_frame(g));
  }
  EXPECT_EQ(first_frame(i_frame), RStep::hello);  // control

  // IK: a second message of any kind after the hello.
  for (const std::string& g : {i_frame, y_frame, x_frame}) {
    LinkResponder res(b, "beta");
    ASSERT_EQ(res.on_frame(i_frame, out, err), RStep::hello);
    EXPECT_EQ(res.on_frame(g, out, err), RStep::failed);
  }
  // XX: msg1 twice, or an IK msg1 as the second message.
  for (const std::string& g : {x_frame, i_frame}) {
    LinkResponder res(b, "beta");
    ASSERT_EQ(res.on_frame(x_frame, out, err), RStep::send);
    EXPECT_EQ(res.on_frame(g, out, err), RStep::failed);
    EXPECT_TRUE(contains(err, "unexpected")) << err;
  }
  // XX: a third message after the hello.
  {
    LinkResponder res(b, "beta");
    LinkInitiator ini(a, hello_of("alpha"), "beta", std::nullopt);
    std::string f1, f2, f3;
    ASSERT_TRUE(ini.first(f1, err));
    ASSERT_EQ(res.on_frame(f1, f2, err), RStep::send);
    ASSERT_EQ(ini.on_frame(f2, f3, err), IStep::send);
    ASSERT_EQ(res.on_frame(f3, out, err), RStep::hello);
    EXPECT_EQ(res.on_frame(f3, out, err), RStep::failed);
  }
  // XX: a msg3 from another handshake.
  {
    LinkResponder res(b, "beta");
    ASSERT_EQ(res.on_frame(x_frame, out, err), RStep::send);
    RStep s = res.on_frame(y_frame, out, err);  // y_frame answers another responder's msg2
    EXPECT_TRUE(s == RStep::refuse || s == RStep::failed) << name(s);
  }
}

TEST_F(LinkHandshake, MalformedHelloRefused) {
  // A genuine IK message whose hello payload is not a hello: the responder
  // refuses, it does not hand anything on.
  const Trust& a = node("alpha");
  const Trust& b = node("beta");
  // Build msg1 with the Noise layer directly, as LinkInitiator would, but with a bad payload.
  for (const std::string& payload :
       {std::string("not json"), std::string("[1]"), std::string("{\"node\":5}"), std::string("{\"addr\":\"x\"}")}) {
    noise::HandshakeConfig hc;
    hc.protocol_name = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
    hc.initiator = true;
    hc.prologue = "jsd link 1";
    hc.s = a.self();
    hc.rs = key("beta");
    noise::HandshakeState hs;
    std::string err, m1 = std::string("I") + '\0', out;
    ASSERT_TRUE(hs.initialize(hc, err)) << err;
    ASSERT_TRUE(hs.write_message(payload, m1, err)) << err;
    LinkResponder res(b, "beta");
    EXPECT_EQ(res.on_frame(m1, out, err), RStep::refuse) << payload;
    EXPECT_EQ(out, "Rmalformed hello");
  }
}

TEST(LinkHello, JsonRoundTrip) {
  Hello h{"alpha", "127.0.0.2:4455", "beta", "jsdcert1.x.y"}, back;
  std::string err;
  ASSERT_TRUE(hello_from_json(hello_to_json(h), back, err)) << err;
  EXPECT_EQ(back.node, h.node);
  EXPECT_EQ(back.addr, h.addr);
  EXPECT_EQ(back.to, h.to);
  EXPECT_EQ(back.cert, h.cert);
  h.cert.clear();
  EXPECT_EQ(hello_to_json(h).find("cert"), std::string::npos);
  for (const char* bad : {"", "{", "[]", "{\"addr\":\"x\"}", "{\"node\":1}", "{\"node\":\"a\",\"to\":[]}"})
    EXPECT_FALSE(hello_from_json(bad, back, err)) << bad;
  EXPECT_EQ(LinkResponder::refuse("why"), "Rwhy");
}

// The hello's time (what makes a replayed message 1 detectable): sent by
// every initiator, later each time, carried intact to the responder.
TEST(LinkHello, TimeRoundTripAndIncreases) {
  Hello h{"alpha", "127.0.0.2:4455", "beta", ""}, back;
  std::string err;
  h.time = 1765000000123456789ull;
  ASSERT_TRUE(hello_from_json(hello_to_json(h), back, err)) << err;
  EXPECT_EQ(back.time, h.time);
  h.time = 0;
  ASSERT_TRUE(hello_from_json(hello_to_json(h), back, err)) << err;
  EXPECT_EQ(back.time, 0u);
  for (const char* bad :
       {"{\"node\":\"a\",\"time\":-1}", "{\"node\":\"a\",\"time\":\"1\"}", "{\"node\":\"a\",\"time\":1.5}"})
    EXPECT_FALSE(hello_from_json(bad, back, err)) << bad;
  uint64_t a = next_hello_time(), b = next_hello_time();
  EXPECT_GT(b, a);
  EXPECT_GT(a, 1700000000ull * 1000000000ull);  // nanoseconds of the wall clock
}
