// SecureChannel: the frame protection of a link, keyed by the transport keys
// of the Noise handshake (handshake_test.cpp covers where the keys come from).
#include "link/crypto.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <memory>
#include <string>

#include "link/noise.h"

using namespace jsd;

namespace {

Key random_key() {
  std::string err;
  EXPECT_TRUE(crypto_init(err)) << err;
  Key k;
  randombytes_buf(k.data(), k.size());
  return k;
}

// Two ends of one link: `a` is the initiator (sends on c2s), `b` the responder.
class SecureChannelPair : public ::testing::Test {
 protected:
  void SetUp() override {
    c2s = random_key();
    s2c = random_key();
    a = std::make_unique<SecureChannel>(c2s, 0, s2c, 0);
    b = std::make_unique<SecureChannel>(s2c, 0, c2s, 0);
  }
  static std::string seal(SecureChannel& ch, const std::string& s) {
    std::string out;
    ch.seal(s, out);
    return out;
  }
  // Sends one frame each way and says whether both arrived intact.
  bool round_trip(const std::string& what) {
    std::string plain;
    if (!b->open(seal(*a, what + " a->b"), plain) || plain != what + " a->b") return false;
    if (!a->open(seal(*b, what + " b->a"), plain) || plain != what + " b->a") return false;
    return true;
  }
  Key c2s{}, s2c{};
  std::unique_ptr<SecureChannel> a, b;
};

}  // namespace

TEST(SecureChannelBasics, DefaultIsNotReady) {
  SecureChannel none;
  EXPECT_FALSE(none.ready());
  Key k = random_key();
  SecureChannel ch(k, 0, k, 0);
  EXPECT_TRUE(ch.ready());
}

TEST_F(SecureChannelPair, SealOpenInOrder) {
  std::string plain;
  for (int i = 0; i < 3; ++i) {
    std::string c = seal(*a, "frame " + std::to_string(i));
    EXPECT_EQ(c.size(), std::string("frame 0").size() + kMacBytes);
    EXPECT_EQ(c.find("frame"), std::string::npos);  // encrypted, not just signed
    ASSERT_TRUE(b->open(c, plain));
    EXPECT_EQ(plain, "frame " + std::to_string(i));
  }
  EXPECT_EQ(a->sent(), 3u);
  EXPECT_EQ(b->received(), 3u);
  EXPECT_EQ(a->received(), 0u);
  EXPECT_EQ(b->sent(), 0u);
  // The other direction has its own counter.
  ASSERT_TRUE(a->open(seal(*b, "back"), plain));
  EXPECT_EQ(plain, "back");
  EXPECT_EQ(a->received(), 1u);
}

TEST_F(SecureChannelPair, SealAppendsToOut) {
  std::string out = "hdr", plain;
  a->seal("payload", out);
  ASSERT_EQ(out.substr(0, 3), "hdr");
  ASSERT_TRUE(b->open(std::string_view(out).substr(3), plain));
  EXPECT_EQ(plain, "payload");
}

TEST_F(SecureChannelPair, EmptyAndLargeFrames) {
  std::string plain = "junk";
  ASSERT_TRUE(b->open(seal(*a, ""), plain));
  EXPECT_EQ(plain, "");
  // Longer than a Noise transport message may be (65535): jsd frames may be.
  std::string big(200000, 'z');
  ASSERT_TRUE(b->open(seal(*a, big), plain));
  EXPECT_EQ(plain, big);
}

TEST_F(SecureChannelPair, TamperedFrameFails) {
  std::string c = seal(*a, "run job hello"), plain;
  for (size_t i = 0; i < c.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80}) {
      std::string t = c;
      t[i] = static_cast<char>(t[i] ^ mask);
      EXPECT_FALSE(b->open(t, plain)) << "flipped byte " << i << " mask " << int(mask);
    }
  }
  EXPECT_EQ(b->received(), 0u);  // failures did not advance the counter
  ASSERT_TRUE(b->open(c, plain));
  EXPECT_EQ(plain, "run job hello");
}

TEST_F(SecureChannelPair, ReplayedFrameFails) {
  std::string c = seal(*a, "once"), plain;
  ASSERT_TRUE(b->open(c, plain));
  EXPECT_FALSE(b->open(c, plain));
  // The channel goes on with the next genuine frame.
  ASSERT_TRUE(b->open(seal(*a, "twice"), plain));
  EXPECT_EQ(plain, "twice");
}

TEST_F(SecureChannelPair, ReorderedFramesFail) {
  std::string f0 = seal(*a, "a"), f1 = seal(*a, "b"), plain;
  EXPECT_FALSE(b->open(f1, plain));
  ASSERT_TRUE(b->open(f0, plain));
  EXPECT_EQ(plain, "a");
  ASSERT_TRUE(b->open(f1, plain));
  EXPECT_EQ(plain, "b");
}

TEST_F(SecureChannelPair, DroppedFrameFailsTheRest) {
  seal(*a, "lost");
  std::string f1 = seal(*a, "after"), plain;
  EXPECT_FALSE(b->open(f1, plain));
}

TEST_F(SecureChannelPair, TruncatedOrExtendedFrameFails) {
  std::string c = seal(*a, "some payload"), plain;
  for (size_t n = 0; n < c.size(); ++n) EXPECT_FALSE(b->open(c.substr(0, n), plain)) << n;
  EXPECT_FALSE(b->open(c + "x", plain));
  ASSERT_TRUE(b->open(c, plain));
  EXPECT_EQ(plain, "some payload");
}

TEST_F(SecureChannelPair, ReflectedFrameFails) {
  // A frame a sent, bounced back at a, must not open: keys differ per direction.
  std::string c = seal(*a, "echo"), plain;
  EXPECT_FALSE(a->open(c, plain));
  // Nor at a second instance of the sender with the same keys.
  SecureChannel twin(c2s, 0, s2c, 0);
  EXPECT_FALSE(twin.open(c, plain));
}

TEST_F(SecureChannelPair, WrongKeyFails) {
  std::string c = seal(*a, "secret"), plain;
  SecureChannel stranger(random_key(), 0, random_key(), 0);
  EXPECT_FALSE(stranger.open(c, plain));
  SecureChannel swapped(c2s, 0, s2c, 0);  // rx = s2c, the wrong direction's key
  EXPECT_FALSE(swapped.open(c, plain));
  EXPECT_TRUE(b->open(c, plain));
}

TEST_F(SecureChannelPair, RekeyOnBothSidesKeepsWorking) {
  ASSERT_TRUE(round_trip("before"));
  a->rekey_tx();
  b->rekey_rx();
  a->rekey_rx();
  b->rekey_tx();
  EXPECT_EQ(a->sent(), 1u);  // the counters go on: rekey does not reset nonces
  EXPECT_EQ(b->received(), 1u);
  ASSERT_TRUE(round_trip("after one rekey"));
  // Repeated rekeys, one direction at a time.
  for (int i = 0; i < 3; ++i) {
    a->rekey_tx();
    b->rekey_rx();
    ASSERT_TRUE(round_trip("after rekey " + std::to_string(i)));
  }
  // The new keys are not the old ones: a channel still on the original keys
  // (at the right nonce) cannot open what is sealed now.
  SecureChannel old(s2c, 0, c2s, a->sent());
  std::string plain;
  EXPECT_FALSE(old.open(seal(*a, "new key"), plain));
}

TEST_F(SecureChannelPair, RekeyOnOneSideOnlyBreaksTheNextFrame) {
  ASSERT_TRUE(round_trip("before"));
  std::string plain;
  a->rekey_tx();  // the sender rekeyed, the receiver did not
  std::string f = seal(*a, "x");
  EXPECT_FALSE(b->open(f, plain));
  // The other direction is unaffected.
  ASSERT_TRUE(a->open(seal(*b, "other way"), plain));
  EXPECT_EQ(plain, "other way");
  // Once the receiver rekeys too, the same frame opens.
  b->rekey_rx();
  ASSERT_TRUE(b->open(f, plain));
  EXPECT_EQ(plain, "x");
}

TEST_F(SecureChannelPair, RekeyOnReceiverOnlyBreaksTheNextFrame) {
  ASSERT_TRUE(round_trip("before"));
  std::string plain;
  b->rekey_rx();
  EXPECT_FALSE(b->open(seal(*a, "x"), plain));
}

TEST(SecureChannelNonce, ResponderStartingAtOneInteroperates) {
  // XX: the responder sealed its accept ('P') with the s2c key at nonce 0 during
  // the handshake, so both sides go on with s2c at nonce 1 and c2s at 0.
  Key c2s = random_key(), s2c = random_key();
  SecureChannel init(c2s, 0, s2c, 1), resp(s2c, 1, c2s, 0);
  std::string f, plain;
  resp.seal("first transport frame", f);
  ASSERT_TRUE(init.open(f, plain));
  EXPECT_EQ(plain, "first transport frame");
  EXPECT_EQ(init.received(), 2u);
  EXPECT_EQ(resp.sent(), 2u);
  f.clear();
  init.seal("ticket", f);
  ASSERT_TRUE(resp.open(f, plain));
  EXPECT_EQ(plain, "ticket");

  // A receiver that expects nonce 0 does not open the frame sealed at 1, and
  // one that expects 1 does not open a frame sealed at 0.
  SecureChannel at0(c2s, 0, s2c, 0), sender1(s2c, 1, c2s, 0), sender0(s2c, 0, c2s, 0);
  f.clear();
  sender1.seal("n=1", f);
  EXPECT_FALSE(at0.open(f, plain));
  SecureChannel at1(c2s, 0, s2c, 1);
  f.clear();
  sender0.seal("n=0", f);
  EXPECT_FALSE(at1.open(f, plain));
}

TEST(SecureChannelNonce, MatchesNoiseCipherState) {
  // The frames are Noise transport messages (empty ad): a CipherState with the
  // same key and nonce produces and opens the same bytes, including after Rekey().
  Key k = random_key();
  noise::CipherState cs;
  cs.initialize_key(k);
  cs.set_nonce(1);  // as after the XX accept
  std::string from_noise, plain;
  ASSERT_TRUE(cs.encrypt_with_ad("", "hello", from_noise));
  SecureChannel rx(random_key(), 0, k, 1), tx(k, 1, random_key(), 0);
  ASSERT_TRUE(rx.open(from_noise, plain));
  EXPECT_EQ(plain, "hello");
  std::string from_channel;
  tx.seal("hello", from_channel);
  EXPECT_EQ(from_channel, from_noise);

  cs.rekey();
  tx.rekey_tx();
  rx.rekey_rx();
  from_noise.clear();
  from_channel.clear();
  ASSERT_TRUE(cs.encrypt_with_ad("", "after rekey", from_noise));
  tx.seal("after rekey", from_channel);
  EXPECT_EQ(from_channel, from_noise);
  ASSERT_TRUE(rx.open(from_noise, plain));
  EXPECT_EQ(plain, "after rekey");
}

TEST(SecureChannelHex, RoundTrip) {
  unsigned char in[4] = {0x00, 0x7f, 0xa5, 0xff}, out[4] = {};
  std::string h = to_hex(in, sizeof in);
  EXPECT_EQ(h, "007fa5ff");
  ASSERT_TRUE(from_hex(h, out, sizeof out));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 4), std::string(reinterpret_cast<char*>(in), 4));
  EXPECT_FALSE(from_hex("007fa5", out, sizeof out));
  EXPECT_FALSE(from_hex("007fa5zz", out, sizeof out));
  EXPECT_FALSE(from_hex("007fa5ff00", out, sizeof out));
}

// The frame budget (rekey_after_frames): a sender is due to rekey exactly
// when it has sealed that many frames since its last key, however long ago
// the clock said so; then the count starts again. The default budget is
// 2^20: a channel started just below it is due at 2^20.
TEST(SecureChannelRekeyBudget, DueAfterTheFrameBudget) {
  Key k = random_key();
  RekeyLimits lim{uint64_t(1) << 40, 16};  // the clock never makes it due here
  SecureChannel ch(k, 0, k, 0);
  ch.start_clock(0);
  std::string out;
  for (int i = 0; i < 15; ++i) {
    ch.seal("x", out);
    ASSERT_FALSE(ch.rekey_due(1, lim)) << "due after " << i + 1 << " frames";
  }
  ch.seal("x", out);
  EXPECT_TRUE(ch.rekey_due(1, lim));
  ch.rekey_tx(1);
  EXPECT_FALSE(ch.rekey_due(1, lim));
  for (int i = 0; i < 16; ++i) ch.seal("x", out);
  EXPECT_TRUE(ch.rekey_due(1, lim));

  RekeyLimits deflt{uint64_t(1) << 40};
  EXPECT_EQ(deflt.after_frames, uint64_t(1) << 20);
  SecureChannel near(k, (uint64_t(1) << 20) - 2, k, 0);  // as if 2^20 - 2 frames were sent
  near.start_clock(0);
  near.seal("x", out);
  EXPECT_FALSE(near.rekey_due(1, deflt));
  near.seal("x", out);
  EXPECT_TRUE(near.rekey_due(1, deflt));
}

TEST(SecureChannelRekeyBudget, DueAfterTheTime) {
  Key k = random_key();
  SecureChannel ch(k, 0, k, 0);
  ch.start_clock(1000);
  RekeyLimits lim{500, uint64_t(1) << 20};
  EXPECT_FALSE(ch.rekey_due(1499, lim));
  EXPECT_TRUE(ch.rekey_due(1500, lim));
}
