// Relayed requests (relay.h): the crypto_box construction against NaCl's
// published vector, sealing and opening, what a gateway's changes do, the
// encodings, and the target's replay memory (relay_keys.h).
#include "relay.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include "crypto.h"
#include "relay_keys.h"
#include "temp_dir.h"

namespace jsd {
namespace {

Key32 key_of(std::initializer_list<unsigned char> b) {
  Key32 k{};
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

Key32 pub_of(const Key32& priv) {
  Key32 p{};
  crypto_scalarmult_base(p.data(), priv.data());
  return p;
}

struct Pair {
  Key32 priv{}, pub{};
  Pair() {
    randombytes_buf(priv.data(), priv.size());
    pub = pub_of(priv);
  }
};

class RelayTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(crypto_init(err)) << err;
  }
};

// NaCl's crypto_box test vector ("Cryptography in NaCl", libsodium's
// test/default/box.c and box.exp; the keys are RFC 7748's 6.1): Bob opens
// what Alice boxed, with the bytes jsd puts on the wire (nonce || mac || c).
TEST_F(RelayTest, OpensNaclsPublishedVector) {
  Key32 alicesk =
      key_of({0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
              0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a});
  Key32 bobsk =
      key_of({0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f, 0x8b, 0x83, 0x80, 0x0e, 0xe6,
              0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18, 0xb6, 0xfd, 0x1c, 0x2f, 0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb});
  Key32 bobpk =
      key_of({0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3, 0x5b, 0x61, 0xc2, 0xec, 0xe4, 0x35, 0x37,
              0x3f, 0x83, 0x43, 0xc8, 0x5b, 0x78, 0x67, 0x4d, 0xad, 0xfc, 0x7e, 0x14, 0x6f, 0x88, 0x2b, 0x4f});
  ASSERT_EQ(pub_of(bobsk), bobpk);
  const unsigned char nonce[24] = {0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8,
                                   0x75, 0xfc, 0x73, 0xd6, 0x82, 0x19, 0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37};
  const unsigned char m[131] = {
      0xbe, 0x07, 0x5f, 0xc5, 0x3c, 0x81, 0xf2, 0xd5, 0xcf, 0x14, 0x13, 0x16, 0xeb, 0xeb, 0x0c, 0x7b, 0x52, 0x28, 0xc5,
      0x2a, 0x4c, 0x62, 0xcb, 0xd4, 0x4b, 0x66, 0x84, 0x9b, 0x64, 0x24, 0x4f, 0xfc, 0xe5, 0xec, 0xba, 0xaf, 0x33, 0xbd,
      0x75, 0x1a, 0x1a, 0xc7, 0x28, 0xd4, 0x5e, 0x6c, 0x61, 0x29, 0x6c, 0xdc, 0x3c, 0x01, 0x23, 0x35, 0x61, 0xf4, 0x1d,
      0xb6, 0x6c, 0xce, 0x31, 0x4a, 0xdb, 0x31, 0x0e, 0x3b, 0xe8, 0x25, 0x0c, 0x46, 0xf0, 0x6d, 0xce, 0xea, 0x3a, 0x7f,
      0xa1, 0x34, 0x80, 0x57, 0xe2, 0xf6, 0x55, 0x6a, 0xd6, 0xb1, 0x31, 0x8a, 0x02, 0x4a, 0x83, 0x8f, 0x21, 0xaf, 0x1f,
      0xde, 0x04, 0x89, 0x77, 0xeb, 0x48, 0xf5, 0x9f, 0xfd, 0x49, 0x24, 0xca, 0x1c, 0x60, 0x90, 0x2e, 0x52, 0xf0, 0xa0,
      0x89, 0xbc, 0x76, 0x89, 0x70, 0x40, 0xe0, 0x82, 0xf9, 0x37, 0x76, 0x38, 0x48, 0x64, 0x5e, 0x07, 0x05};
  const unsigned char c[147] = {
      0xf3, 0xff, 0xc7, 0x70, 0x3f, 0x94, 0x00, 0xe5, 0x2a, 0x7d, 0xfb, 0x4b, 0x3d, 0x33, 0x05, 0xd9, 0x8e, 0x99, 0x3b,
      0x9f, 0x48, 0x68, 0x12, 0x73, 0xc2, 0x96, 0x50, 0xba, 0x32, 0xfc, 0x76, 0xce, 0x48, 0x33, 0x2e, 0xa7, 0x16, 0x4d,
      0x96, 0xa4, 0x47, 0x6f, 0xb8, 0xc5, 0x31, 0xa1, 0x18, 0x6a, 0xc0, 0xdf, 0xc1, 0x7c, 0x98, 0xdc, 0xe8, 0x7b, 0x4d,
      0xa7, 0xf0, 0x11, 0xec, 0x48, 0xc9, 0x72, 0x71, 0xd2, 0xc2, 0x0f, 0x9b, 0x92, 0x8f, 0xe2, 0x27, 0x0d, 0x6f, 0xb8,
      0x63, 0xd5, 0x17, 0x38, 0xb4, 0x8e, 0xee, 0xe3, 0x14, 0xa7, 0xcc, 0x8a, 0xb9, 0x32, 0x16, 0x45, 0x48, 0xe5, 0x26,
      0xae, 0x90, 0x22, 0x43, 0x68, 0x51, 0x7a, 0xcf, 0xea, 0xbd, 0x6b, 0xb3, 0x73, 0x2b, 0xc0, 0xe9, 0xda, 0x99, 0x83,
      0x2b, 0x61, 0xca, 0x01, 0xb6, 0xde, 0x56, 0x24, 0x4a, 0x9e, 0x88, 0xd5, 0xf9, 0xb3, 0x79, 0x73, 0xf6, 0x22, 0xa4,
      0x3d, 0x14, 0xa6, 0x59, 0x9b, 0x1f, 0x65, 0x4c, 0xb4, 0x5a, 0x74, 0xe3, 0x55, 0xa5};
  std::string sealed(reinterpret_cast<const char*>(nonce), 24);
  sealed.append(reinterpret_cast<const char*>(c), sizeof c);
  std::string plain;
  ASSERT_TRUE(open_box(bobsk, pub_of(alicesk), sealed, plain));
  EXPECT_EQ(plain, std::string(reinterpret_cast<const char*>(m), sizeof m));
  // The other way: what jsd seals for Bob opens with libsodium's own open.
  std::string mine = seal_box(alicesk, bobpk, plain);
  ASSERT_EQ(mine.size(), plain.size() + kRelayBoxOverhead);
  std::string back(plain.size(), '\0');
  ASSERT_EQ(
      crypto_box_open_easy(reinterpret_cast<unsigned char*>(back.data()),
                           reinterpret_cast<const unsigned char*>(mine.data()) + 24, mine.size() - 24,
                           reinterpret_cast<const unsigned char*>(mine.data()), pub_of(alicesk).data(), bobsk.data()),
      0);
  EXPECT_EQ(back, plain);
}

TEST_F(RelayTest, RequestSealedByItsOriginatorOpensAtItsTarget) {
  Pair alpha, gamma;
  RelayRequest rq{"alpha", "gamma", 1234567, new_relay_id(), Kind::call, "job", R"({"op":"submit","job":"hello"})"};
  std::string sealed = seal_box(alpha.priv, gamma.pub, encode_relay_request(rq));
  std::string plain, err;
  ASSERT_TRUE(open_box(gamma.priv, alpha.pub, sealed, plain));
  RelayRequest got;
  ASSERT_TRUE(decode_relay_request(plain, got, err)) << err;
  EXPECT_EQ(got.origin, "alpha");
  EXPECT_EQ(got.target, "gamma");
  EXPECT_EQ(got.sealed_ms, 1234567u);
  EXPECT_EQ(got.rid, rq.rid);
  EXPECT_EQ(got.rid.size(), 16u);
  EXPECT_EQ(got.kind, Kind::call);
  EXPECT_EQ(got.object, "job");
  EXPECT_EQ(got.body, rq.body);
}

// A gateway that changes any byte, or seals with its own key claiming to
// be the originator, makes a box that does not open at the target.
TEST_F(RelayTest, AlteredOrForgedBoxesDoNotOpen) {
  Pair alpha, beta, gamma;
  RelayRequest rq{"alpha", "gamma", 1, new_relay_id(), Kind::call, "job", R"({"argv":["/bin/true"]})"};
  std::string sealed = seal_box(alpha.priv, gamma.pub, encode_relay_request(rq));
  std::string plain;
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] ^= 0x01;
    EXPECT_FALSE(open_box(gamma.priv, alpha.pub, bad, plain)) << "byte " << i;
  }
  EXPECT_FALSE(open_box(gamma.priv, alpha.pub, sealed.substr(0, sealed.size() - 1), plain));
  EXPECT_FALSE(open_box(gamma.priv, alpha.pub, sealed.substr(0, 10), plain));
  std::string forged = seal_box(beta.priv, gamma.pub, encode_relay_request(rq));
  EXPECT_FALSE(open_box(gamma.priv, alpha.pub, forged, plain));
  // Sealed for another target: that target's key does not open it here.
  std::string elsewhere = seal_box(alpha.priv, beta.pub, encode_relay_request(rq));
  EXPECT_FALSE(open_box(gamma.priv, alpha.pub, elsewhere, plain));
}

TEST_F(RelayTest, MalformedRequestsAreRefused) {
  RelayRequest rq{"alpha", "gamma", 7, new_relay_id(), Kind::notify, "job.stdin", std::string("\0\1\2", 3)};
  std::string ok = encode_relay_request(rq), err;
  RelayRequest got;
  ASSERT_TRUE(decode_relay_request(ok, got, err)) << err;
  EXPECT_EQ(got.body, rq.body);
  EXPECT_FALSE(decode_relay_request(ok.substr(0, ok.size() - 1), got, err));
  EXPECT_FALSE(decode_relay_request(ok + "x", got, err));
  std::string magic = ok;
  magic[0] = 'J';
  EXPECT_FALSE(decode_relay_request(magic, got, err));
  rq.kind = Kind::reply;
  EXPECT_FALSE(decode_relay_request(encode_relay_request(rq), got, err));
  EXPECT_FALSE(decode_relay_request("", got, err));
}

TEST_F(RelayTest, EnvelopeRoundTripsAndRefusesBadOnes) {
  RelayEnvelope e{"alpha", "gamma", "job", {"beta", "delta"}, std::string("\0box\xff", 5)};
  RelayEnvelope got;
  std::string err;
  ASSERT_TRUE(decode_envelope(encode_envelope(e), got, err)) << err;
  EXPECT_EQ(got.origin, "alpha");
  EXPECT_EQ(got.target, "gamma");
  EXPECT_EQ(got.object, "job");
  EXPECT_EQ(got.via, e.via);
  EXPECT_EQ(got.box, e.box);
  EXPECT_FALSE(decode_envelope("{", got, err));
  EXPECT_FALSE(decode_envelope("[]", got, err));
  EXPECT_FALSE(decode_envelope(R"({"origin":"alpha","target":"gamma","object":"job","box":"%%%"})", got, err));
  EXPECT_FALSE(decode_envelope(R"({"origin":"a/b","target":"gamma","object":"job","box":""})", got, err));
  EXPECT_FALSE(decode_envelope(R"({"origin":"alpha","target":"gamma","box":""})", got, err));
  RelayEnvelope deep = e;
  deep.via.assign(kMaxRelayHops + 1, "beta");
  EXPECT_FALSE(decode_envelope(encode_envelope(deep), got, err));
  EXPECT_NE(err.find("more than"), std::string::npos) << err;
  // The originator's certificate rides along when it has one; none is "".
  EXPECT_TRUE(got.cert.empty());
  EXPECT_EQ(encode_envelope(e).find("cert"), std::string::npos);
  e.cert = "jsdcert1.abc.def";
  ASSERT_TRUE(decode_envelope(encode_envelope(e), got, err)) << err;
  EXPECT_EQ(got.cert, e.cert);
  e.cert.clear();
  ASSERT_TRUE(decode_envelope(encode_envelope(e), got, err)) << err;
  EXPECT_TRUE(got.cert.empty());  // not left over from the last decode
  e.cert.assign(kMaxCertText + 1, 'a');
  EXPECT_FALSE(decode_envelope(encode_envelope(e), got, err));
  EXPECT_FALSE(decode_envelope(R"({"origin":"alpha","target":"gamma","object":"job","box":"","cert":7})", got, err));
}

// The target's memory of request ids: a second use is refused, also after
// a restart (the file), and ids sealed before the window are forgotten
// (the window refuses those).
TEST_F(RelayTest, ReplayMemorySurvivesARestartAndForgetsWhatLeftTheWindow) {
  jsd_test::TempDir dir("relay");
  std::string err, a = new_relay_id(), b = new_relay_id();
  uint64_t now = 1000000, w = 300000;
  {
    RelaySeen seen(dir.file("relay-seen"));
    ASSERT_TRUE(seen.open(now, w, err)) << err;
    EXPECT_TRUE(seen.add(a, now, now, w, err)) << err;
    EXPECT_FALSE(seen.add(a, now, now, w, err));
    EXPECT_NE(err.find("replay"), std::string::npos) << err;
    EXPECT_TRUE(seen.add(b, now - w + 10, now, w, err)) << err;
  }
  RelaySeen again(dir.file("relay-seen"));
  ASSERT_TRUE(again.open(now, w, err)) << err;
  EXPECT_EQ(again.size(), 2u);
  EXPECT_FALSE(again.add(a, now, now, w, err));
  RelaySeen later(dir.file("relay-seen"));
  ASSERT_TRUE(later.open(now + 100, w, err)) << err;
  EXPECT_EQ(later.size(), 1u);  // b left the window
  EXPECT_FALSE(later.add(a, now, now + 100, w, err));
}

TEST(RelayBundle, RoundTripsAndRefusesAnythingButOneWholeBundle) {
  std::vector<RelayBundleItem> items{{7, Kind::call, R"({"a":1})"}, {8, Kind::notify, ""}};
  std::string bytes = encode_bundle(items), err;
  std::vector<RelayBundleItem> back;
  ASSERT_TRUE(decode_bundle(bytes, back, err)) << err;
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].id, 7u);
  EXPECT_EQ(back[0].kind, Kind::call);
  EXPECT_EQ(back[0].envelope, R"({"a":1})");
  EXPECT_EQ(back[1].kind, Kind::notify);
  for (size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(decode_bundle(bytes.substr(0, cut), back, err)) << cut;
  EXPECT_FALSE(decode_bundle(bytes + "x", back, err));
  EXPECT_FALSE(decode_bundle(encode_bundle({}), back, err));  // no items
  std::string reply = bytes;
  reply[13 + 4 + 8] = static_cast<char>(Kind::reply);  // the first item's kind
  EXPECT_FALSE(decode_bundle(reply, back, err));
  EXPECT_NE(err.find("neither a call nor a notify"), std::string::npos) << err;
  std::string many = encode_bundle(std::vector<RelayBundleItem>(kMaxBundleItems + 1, {1, Kind::call, "{}"}));
  EXPECT_FALSE(decode_bundle(many, back, err));
}

}  // namespace
}  // namespace jsd
