#include "link/identity.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "temp_dir.h"

using namespace jsd;

namespace {

// A fresh directory, removed with everything in it at scope exit.
struct TempDir : jsd_test::TempDir {
  TempDir() : jsd_test::TempDir("identity") {}
};

void write_file(const std::string& path, const std::string& data, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

std::string b64url(std::string_view s) {
  std::string out(sodium_base64_encoded_len(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);
  return out;
}

// Signs an arbitrary body following the documented format independently of
// sign_cert, so tests can present well-signed but malformed bodies.
std::string sign_body(const CaKey& ca, std::string_view body) {
  std::string msg("jsd-cert-v1\0", 12);
  msg.append(body);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), ca.sk.data());
  return "jsdcert1." + b64url(body) + "." + b64url(std::string_view(reinterpret_cast<char*>(sig), sizeof sig));
}

CaKey make_ca() {
  CaKey ca;
  EXPECT_EQ(sodium_init() >= 0, true);
  crypto_sign_keypair(ca.pub.data(), ca.sk.data());
  return ca;
}

Key32 random_key() {
  Key32 k;
  randombytes_buf(k.data(), k.size());
  return k;
}

constexpr int64_t kNb = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kNa = 1767323045;  // 2026-01-02T03:04:05Z

Cert sample_cert() {
  Cert c;
  c.name = "alpha";
  c.groups = {"web", "db:ro"};
  c.key = random_key();
  c.not_before = kNb;
  c.not_after = kNa;
  return c;
}

// Body with the given raw JSON values (strings must come quoted).
std::string body_with(const CaKey& ca, const std::string& name, const std::string& groups, const std::string& nb,
                      const std::string& na, const std::string& extra = "") {
  return "{\"v\":1,\"name\":" + name + ",\"groups\":" + groups + ",\"key\":\"" + key_to_text(random_key()) +
         "\",\"ca\":\"" + key_to_text(ca.pub) + "\",\"nb\":" + nb + ",\"na\":" + na + extra + "}";
}

}  // namespace

TEST(IdentityKeys, TextRoundTripAndStrictness) {
  ASSERT_GE(sodium_init(), 0);
  for (int i = 0; i < 100; ++i) {
    Key32 k = random_key(), back{};
    std::string t = key_to_text(k);
    ASSERT_EQ(t.size(), 44u);
    ASSERT_TRUE(key_from_text(t, back)) << t;
    EXPECT_EQ(back, k);
    EXPECT_FALSE(key_from_text(t + "\n", back));
    EXPECT_FALSE(key_from_text(" " + t, back));
    EXPECT_FALSE(key_from_text(t.substr(0, 43), back));
    EXPECT_FALSE(key_from_text(t.substr(0, 40), back));
  }
  Key32 zero{}, out{};
  std::string t = key_to_text(zero);
  EXPECT_EQ(t, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  out.fill(7);
  std::string bad = t;
  bad[42] = 'B';  // sets unused low bits: non-canonical
  EXPECT_FALSE(key_from_text(bad, out));
  bad = t;
  bad[3] = '-';  // url-safe alphabet is not the key alphabet
  EXPECT_FALSE(key_from_text(bad, out));
  bad = t;
  bad[43] = 'A';  // 44 chars but no padding: 33 bytes
  EXPECT_FALSE(key_from_text(bad, out));
  EXPECT_FALSE(key_from_text("", out));
  EXPECT_EQ(out[0], 7);  // untouched on failure
}

TEST(IdentityKeys, Fingerprint) {
  Key32 a = random_key(), b = random_key();
  std::string fa = key_fingerprint(a);
  EXPECT_EQ(fa.size(), 19u);
  EXPECT_EQ(fa.substr(0, 3), "b2:");
  EXPECT_EQ(fa, key_fingerprint(a));
  EXPECT_NE(fa, key_fingerprint(b));
  unsigned char h[32];
  crypto_generichash(h, sizeof h, a.data(), a.size(), nullptr, 0);
  EXPECT_EQ(fa, "b2:" + b64url(std::string_view(reinterpret_cast<char*>(h), 12)));
}

TEST(IdentityKeys, NodeKeyRoundTrip) {
  TempDir d;
  std::string err, path = d.file("node.key");
  Key32 pub{}, priv{}, pub2{};
  ASSERT_TRUE(gen_node_key_file(path, pub, err)) << err;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 45);
  ASSERT_TRUE(load_node_key(path, priv, pub2, err)) << err;
  EXPECT_EQ(pub, pub2);
  Key32 derived;
  ASSERT_EQ(crypto_scalarmult_base(derived.data(), priv.data()), 0);
  EXPECT_EQ(derived, pub);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  Key32 fromfile;
  ASSERT_TRUE(key_from_text(line, fromfile));
  EXPECT_EQ(fromfile, priv);
}

TEST(IdentityKeys, PubDerivesFromPrivWrittenByHand) {
  TempDir d;
  std::string err, path = d.file("k");
  Key32 priv = random_key(), pub, p2, l;
  crypto_scalarmult_base(pub.data(), priv.data());
  write_file(path, key_to_text(priv) + "\r\n", 0600);
  ASSERT_TRUE(load_node_key(path, l, p2, err)) << err;
  EXPECT_EQ(l, priv);
  EXPECT_EQ(p2, pub);
}

TEST(IdentityKeys, PskRoundTrip) {
  TempDir d;
  std::string err, a = d.file("a.psk"), b = d.file("b.psk");
  Key32 pa{}, pb{};
  ASSERT_TRUE(gen_psk_file(a, err)) << err;
  ASSERT_TRUE(gen_psk_file(b, err)) << err;
  ASSERT_TRUE(load_psk_file(a, pa, err)) << err;
  ASSERT_TRUE(load_psk_file(b, pb, err)) << err;
  EXPECT_NE(pa, pb);
  EXPECT_NE(pa, Key32{});
}

TEST(IdentityKeys, CaRoundTrip) {
  TempDir d;
  std::string err, path = d.file("ca.key");
  Key32 pub{};
  CaKey ca;
  ASSERT_TRUE(gen_ca_file(path, pub, err)) << err;
  ASSERT_TRUE(load_ca_key(path, ca, err)) << err;
  EXPECT_EQ(ca.pub, pub);
  Key32 derived;
  crypto_sign_ed25519_sk_to_pk(derived.data(), ca.sk.data());
  EXPECT_EQ(derived, pub);
  Cert c = sample_cert(), out;
  ASSERT_TRUE(parse_cert(sign_cert(ca, c), out, err)) << err;
  EXPECT_EQ(out.ca, pub);
  ca.wipe();
  EXPECT_EQ(ca.sk, (std::array<unsigned char, 64>{}));
}

TEST(IdentityKeys, GenRefusesToOverwrite) {
  TempDir d;
  std::string err, path = d.file("x");
  Key32 pub;
  write_file(path, "keep me", 0600);
  EXPECT_FALSE(gen_node_key_file(path, pub, err));
  EXPECT_NE(err.find("refusing to overwrite"), std::string::npos) << err;
  EXPECT_EQ(err.find("cannot create node key file " + path), 0u) << err;
  EXPECT_FALSE(gen_ca_file(path, pub, err));
  EXPECT_NE(err.find("refusing to overwrite"), std::string::npos) << err;
  EXPECT_FALSE(gen_psk_file(path, err));
  EXPECT_NE(err.find("refusing to overwrite"), std::string::npos) << err;
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  EXPECT_EQ(s, "keep me");
  // A symlink is not followed either, even to a missing target.
  std::string link = d.file("link");
  ASSERT_EQ(symlink(d.file("target").c_str(), link.c_str()), 0);
  EXPECT_FALSE(gen_psk_file(link, err));
  EXPECT_FALSE(std::filesystem::exists(d.file("target")));
}

TEST(IdentityKeys, LoadRefusesReadableFiles) {
  TempDir d;
  std::string err, path = d.file("k");
  write_file(path, key_to_text(random_key()) + "\n", 0644);
  Key32 a, b;
  CaKey ca;
  EXPECT_FALSE(load_node_key(path, a, b, err));
  EXPECT_EQ(err.find("node key file " + path), 0u) << err;
  EXPECT_NE(err.find("0644"), std::string::npos) << err;
  EXPECT_NE(err.find("chmod 600 " + path), std::string::npos) << err;
  EXPECT_FALSE(load_psk_file(path, a, err));
  EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
  EXPECT_FALSE(load_ca_key(path, ca, err));
  EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  EXPECT_FALSE(load_psk_file(path, a, err));
  ASSERT_EQ(chmod(path.c_str(), 0602), 0);
  EXPECT_FALSE(load_psk_file(path, a, err));
  ASSERT_EQ(chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(load_psk_file(path, a, err)) << err;
}

TEST(IdentityKeys, LoadRefusesNonRegularFiles) {
  TempDir d;
  std::string err, dir = d.file("dir"), fifo = d.file("fifo");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Key32 a, b;
  CaKey ca;
  for (const std::string& p : {dir, fifo, std::string("/dev/null")}) {
    EXPECT_FALSE(load_node_key(p, a, b, err));
    EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
    EXPECT_FALSE(load_psk_file(p, a, err));
    EXPECT_FALSE(load_ca_key(p, ca, err));
    Cert c;
    std::string text;
    EXPECT_FALSE(load_cert_file(p, c, text, err));
    EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
  }
}

TEST(IdentityKeys, LoadMissingSuggestsCommand) {
  TempDir d;
  std::string err, path = d.file("missing");
  Key32 a, b;
  CaKey ca;
  EXPECT_FALSE(load_node_key(path, a, b, err));
  EXPECT_EQ(err.find("cannot open node key file " + path), 0u) << err;
  EXPECT_NE(err.find("jsd-listener --gen-key " + path), std::string::npos) << err;
  EXPECT_FALSE(load_ca_key(path, ca, err));
  EXPECT_NE(err.find("jsd-listener --gen-ca " + path), std::string::npos) << err;
  EXPECT_FALSE(load_psk_file(path, a, err));
  EXPECT_NE(err.find("jsd-listener --gen-psk " + path), std::string::npos) << err;
}

TEST(IdentityKeys, LoadRefusesGarbage) {
  TempDir d;
  std::string err, path = d.file("k");
  Key32 a, b;
  std::string good = key_to_text(random_key());
  for (const std::string& content : {std::string(""), std::string("hello\n"), good.substr(1) + "\n", " " + good + "\n",
                                     good + "\n" + good + "\n", std::string(5000, 'A')}) {
    unlink(path.c_str());
    write_file(path, content, 0600);
    EXPECT_FALSE(load_node_key(path, a, b, err)) << content;
    EXPECT_EQ(err.find("node key file " + path), 0u) << err;
  }
}

TEST(IdentityCert, RoundTrip) {
  CaKey ca = make_ca();
  Cert c = sample_cert(), out;
  c.ca = random_key();  // ignored by sign_cert
  std::string text = sign_cert(ca, c), err;
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.rfind("jsdcert1.", 0), 0u);
  EXPECT_EQ(text.find_first_of(" \n=+/"), std::string::npos);
  ASSERT_TRUE(parse_cert(text, out, err)) << err;
  EXPECT_EQ(out.name, "alpha");
  EXPECT_EQ(out.groups, (std::vector<std::string>{"web", "db:ro"}));
  EXPECT_EQ(out.key, c.key);
  EXPECT_EQ(out.ca, ca.pub);
  EXPECT_EQ(out.not_before, kNb);
  EXPECT_EQ(out.not_after, kNa);
  EXPECT_TRUE(check_cert(out, {random_key(), ca.pub}, {random_key()}, kNb + 10, err)) << err;
  EXPECT_TRUE(check_cert(out, {ca.pub}, {}, kNb, err)) << err;
  EXPECT_TRUE(check_cert(out, {ca.pub}, {}, kNa, err)) << err;

  // The body is the documented compact JSON.
  size_t d1 = text.find('.'), d2 = text.find('.', d1 + 1);
  std::string b64body = text.substr(d1 + 1, d2 - d1 - 1);
  std::string body(b64body.size(), '\0');
  size_t len = 0;
  ASSERT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(body.data()), body.size(), b64body.data(),
                              b64body.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
  body.resize(len);
  EXPECT_EQ(body, "{\"v\":1,\"name\":\"alpha\",\"groups\":[\"web\",\"db:ro\"],\"key\":\"" + key_to_text(c.key) +
                      "\",\"ca\":\"" + key_to_text(ca.pub) + "\",\"nb\":1767225600,\"na\":1767323045}");
  // And sign_body (the independent implementation of the format) agrees.
  ASSERT_TRUE(parse_cert(sign_body(ca, body), out, err)) << err;
  EXPECT_EQ(sign_body(ca, body), text);  // Ed25519 is deterministic

  // No groups is fine.
  c.groups.clear();
  ASSERT_TRUE(parse_cert(sign_cert(ca, c), out, err)) << err;
  EXPECT_TRUE(out.groups.empty());
}

TEST(IdentityCert, FileRoundTrip) {
  TempDir d;
  CaKey ca = make_ca();
  Cert c = sample_cert(), out;
  std::string text = sign_cert(ca, c), got, err, path = d.file("alpha.crt");
  write_file(path, text + "\n", 0644);  // certificates are public
  ASSERT_TRUE(load_cert_file(path, out, got, err)) << err;
  EXPECT_EQ(got, text);
  EXPECT_EQ(out.key, c.key);
  write_file(path, text + "\n" + text + "\n", 0644);
  EXPECT_FALSE(load_cert_file(path, out, got, err));
  EXPECT_EQ(err.find("certificate file " + path), 0u) << err;
  write_file(path, text.substr(0, text.size() - 1) + "\n", 0644);
  EXPECT_FALSE(load_cert_file(path, out, got, err));
  EXPECT_EQ(err.find("certificate file " + path), 0u) << err;
  write_file(path, std::string(100000, 'x'), 0644);
  EXPECT_FALSE(load_cert_file(path, out, got, err));
  EXPECT_FALSE(load_cert_file(d.file("none"), out, got, err));
  EXPECT_EQ(err.find("cannot open certificate file " + d.file("none")), 0u) << err;
}

TEST(IdentityCert, RefusesAnyAlteredByte) {
  CaKey ca = make_ca();
  std::string text = sign_cert(ca, sample_cert()), err;
  Cert out;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    // Replace with a different char of the same alphabet so only the content changes.
    size_t pos = alphabet.find(bad[i]);
    bad[i] = pos == std::string::npos ? 'x' : alphabet[(pos + 1) % alphabet.size()];
    EXPECT_FALSE(parse_cert(bad, out, err)) << "position " << i;
  }
  // Flip one bit of the body bytes, re-encoding properly: the signature fails.
  size_t d1 = text.find('.'), d2 = text.find('.', d1 + 1);
  std::string b64body = text.substr(d1 + 1, d2 - d1 - 1), body(b64body.size(), '\0');
  size_t len = 0;
  sodium_base642bin(reinterpret_cast<unsigned char*>(body.data()), body.size(), b64body.data(), b64body.size(), nullptr,
                    &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  body.resize(len);
  size_t at = body.find("alpha");
  body[at] = 'A';
  std::string forged = text.substr(0, d1 + 1) + b64url(body) + text.substr(d2);
  EXPECT_FALSE(parse_cert(forged, out, err));
  EXPECT_NE(err.find("bad signature"), std::string::npos) << err;
}

TEST(IdentityCert, RefusesEveryTruncation) {
  CaKey ca = make_ca();
  std::string text = sign_cert(ca, sample_cert()), err;
  Cert out;
  out.name = "untouched";
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_FALSE(parse_cert(std::string_view(text).substr(0, n), out, err)) << n;
    EXPECT_FALSE(err.empty());
  }
  EXPECT_EQ(out.name, "untouched");
  EXPECT_FALSE(parse_cert(text + "A", out, err));
  EXPECT_FALSE(parse_cert(text + ".", out, err));
  EXPECT_FALSE(parse_cert(text + "\n", out, err));
}

TEST(IdentityCert, RefusesWrongPrefixAndShape) {
  CaKey ca = make_ca();
  std::string text = sign_cert(ca, sample_cert()), err;
  Cert out;
  EXPECT_FALSE(parse_cert("jsdcert2" + text.substr(8), out, err));
  EXPECT_NE(err.find("jsdcert1"), std::string::npos) << err;
  EXPECT_FALSE(parse_cert("JSDCERT1" + text.substr(8), out, err));
  EXPECT_FALSE(parse_cert(" " + text, out, err));
  EXPECT_FALSE(parse_cert("", out, err));
  EXPECT_FALSE(parse_cert("jsdcert1.", out, err));
  EXPECT_FALSE(parse_cert("jsdcert1..", out, err));
  EXPECT_FALSE(parse_cert(std::string("jsdcert1.\0\0.\0", 13), out, err));
}

TEST(IdentityCert, RefusesBadBodies) {
  CaKey ca = make_ca();
  std::string err;
  Cert out;
  const std::string g = "[\"web\"]";
  struct Case {
    const char* what;
    std::string body;
  } cases[] = {
      {"not json", "hello"},
      {"truncated json", body_with(ca, "\"alpha\"", g, "1", "2").substr(0, 30)},
      {"json array", "[1,2,3]"},
      {"json string", "\"x\""},
      {"trailing garbage", body_with(ca, "\"alpha\"", g, "1", "2") + "x"},
      {"name as number", body_with(ca, "42", g, "1", "2")},
      {"name null", body_with(ca, "null", g, "1", "2")},
      {"groups not array", body_with(ca, "\"alpha\"", "\"web\"", "1", "2")},
      {"groups object", body_with(ca, "\"alpha\"", "{}", "1", "2")},
      {"group number", body_with(ca, "\"alpha\"", "[\"web\",3]", "1", "2")},
      {"group nested", body_with(ca, "\"alpha\"", "[[\"web\"]]", "1", "2")},
      {"group bad charset", body_with(ca, "\"alpha\"", "[\"we b\"]", "1", "2")},
      {"group empty", body_with(ca, "\"alpha\"", "[\"\"]", "1", "2")},
      {"nb as string", body_with(ca, "\"alpha\"", g, "\"1\"", "2")},
      {"na as string", body_with(ca, "\"alpha\"", g, "1", "\"2\"")},
      {"nb float", body_with(ca, "\"alpha\"", g, "1.5", "2")},
      {"nb bool", body_with(ca, "\"alpha\"", g, "true", "2")},
      {"na 1e400", body_with(ca, "\"alpha\"", g, "1", "1e400")},
      {"na 1e300", body_with(ca, "\"alpha\"", g, "1", "1e300")},
      {"na 2^64-1", body_with(ca, "\"alpha\"", g, "1", "18446744073709551615")},
      {"na 2^64", body_with(ca, "\"alpha\"", g, "1", "18446744073709551616")},
      {"na 2^63", body_with(ca, "\"alpha\"", g, "1", "9223372036854775808")},
      {"na int64 max", body_with(ca, "\"alpha\"", g, "1", "9223372036854775807")},
      {"nb negative", body_with(ca, "\"alpha\"", g, "-5", "2")},
      {"nb > na", body_with(ca, "\"alpha\"", g, "3", "2")},
      {"name empty", body_with(ca, "\"\"", g, "1", "2")},
      {"name space", body_with(ca, "\"al pha\"", g, "1", "2")},
      {"name slash", body_with(ca, "\"a/b\"", g, "1", "2")},
      {"name utf8", body_with(ca, "\"\xc3\xa9t\xc3\xa9\"", g, "1", "2")},
      {"name nul", body_with(ca, "\"a\\u0000b\"", g, "1", "2")},
      {"name too long", body_with(ca, "\"" + std::string(65, 'a') + "\"", g, "1", "2")},
      {"unknown field", body_with(ca, "\"alpha\"", g, "1", "2", ",\"admin\":true")},
      {"v 2", "{\"v\":2" + body_with(ca, "\"alpha\"", g, "1", "2").substr(6)},
      {"v string", "{\"v\":\"1\"" + body_with(ca, "\"alpha\"", g, "1", "2").substr(6)},
      {"v float", "{\"v\":1.0" + body_with(ca, "\"alpha\"", g, "1", "2").substr(6)},
      {"missing v", "{\"w\":1" + body_with(ca, "\"alpha\"", g, "1", "2").substr(6)},
      {"missing key",
       "{\"v\":1,\"name\":\"alpha\",\"groups\":[],\"ca\":\"" + key_to_text(ca.pub) + "\",\"nb\":1,\"na\":2}"},
      {"key short", "{\"v\":1,\"name\":\"alpha\",\"groups\":[],\"key\":\"AAAA\",\"ca\":\"" + key_to_text(ca.pub) +
                        "\",\"nb\":1,\"na\":2}"},
      {"key number",
       "{\"v\":1,\"name\":\"alpha\",\"groups\":[],\"key\":7,\"ca\":\"" + key_to_text(ca.pub) + "\",\"nb\":1,\"na\":2}"},
      {"missing na", "{\"v\":1,\"name\":\"alpha\",\"groups\":[],\"key\":\"" + key_to_text(random_key()) +
                         "\",\"ca\":\"" + key_to_text(ca.pub) + "\",\"nb\":1}"},
      {"deep nesting", body_with(ca, "\"alpha\"", std::string(1000, '[') + std::string(1000, ']'), "1", "2")},
  };
  for (const auto& c : cases) {
    std::string text = sign_body(ca, c.body);
    if (text.size() > kMaxCertText) continue;  // covered by the size test
    EXPECT_FALSE(parse_cert(text, out, err)) << c.what;
    EXPECT_EQ(err.find("invalid certificate"), 0u) << c.what << ": " << err;
  }
  // Control: the same builder with good values is accepted, including the edges.
  EXPECT_TRUE(parse_cert(sign_body(ca, body_with(ca, "\"alpha\"", g, "1", "2")), out, err)) << err;
  EXPECT_TRUE(parse_cert(sign_body(ca, body_with(ca, "\"" + std::string(64, 'a') + "\"", "[]", "0", "0")), out, err))
      << err;
  EXPECT_TRUE(parse_cert(sign_body(ca, body_with(ca, "\"A-z_0.9-x\"", g, "5", "253402300799")), out, err)) << err;
  // Issue 24: a name is never an address. A CA's signature does not make
  // "127.0.6.21:4455" a node name (it took the calls made to that address).
  for (const char* name : {"\"127.0.6.21:4455\"", "\"a:b\"", "\"a/b\""}) {
    EXPECT_FALSE(parse_cert(sign_body(ca, body_with(ca, name, g, "5", "253402300799")), out, err)) << name;
    EXPECT_EQ(err,
              "invalid certificate: \"name\" is not a node name (1-64 of letters, digits, . _ -; a name, not an "
              "address: no ':' or '/')");
  }
  Cert named = sample_cert();
  named.name = "127.0.6.21:4455";
  EXPECT_EQ(sign_cert(ca, named), "");
  // The body names a CA other than the signer: the signature does not verify.
  CaKey other = make_ca();
  EXPECT_FALSE(parse_cert(sign_body(other, body_with(ca, "\"alpha\"", g, "1", "2")), out, err));
  EXPECT_NE(err.find("bad signature"), std::string::npos) << err;
}

TEST(IdentityCert, RefusesOverLongText) {
  CaKey ca = make_ca();
  Cert c = sample_cert(), out;
  std::string err;
  for (int i = 0; i < 200; ++i) c.groups.push_back("group-" + std::to_string(i) + std::string(20, 'g'));
  EXPECT_EQ(sign_cert(ca, c), "");  // sign_cert will not issue it...
  std::string body =
      body_with(ca, "\"alpha\"", "[\"" + std::string(3000, 'g').replace(1000, 1, "\",\"") + "\"]", "1", "2");
  std::string text = sign_body(ca, body);
  ASSERT_GT(text.size(), kMaxCertText);
  EXPECT_FALSE(parse_cert(text, out, err));  // ...and parse_cert refuses it before looking further
  EXPECT_NE(err.find("4096"), std::string::npos) << err;
  EXPECT_FALSE(parse_cert(std::string(1 << 20, 'A'), out, err));
}

TEST(IdentityCert, SignCertRefusesInvalidInput) {
  CaKey ca = make_ca();
  Cert c = sample_cert();
  c.name = "bad name";
  EXPECT_EQ(sign_cert(ca, c), "");
  c = sample_cert();
  c.groups.push_back("");
  EXPECT_EQ(sign_cert(ca, c), "");
  c = sample_cert();
  c.not_before = c.not_after + 1;
  EXPECT_EQ(sign_cert(ca, c), "");
  c = sample_cert();
  CaKey mismatched = ca;
  mismatched.pub = make_ca().pub;
  EXPECT_EQ(sign_cert(mismatched, c), "");
}

TEST(IdentityCert, CheckCert) {
  CaKey ca = make_ca(), other = make_ca();
  Cert c = sample_cert(), out;
  std::string err;
  ASSERT_TRUE(parse_cert(sign_cert(ca, c), out, err)) << err;

  EXPECT_FALSE(check_cert(out, {ca.pub}, {}, kNa + 1, err));
  EXPECT_EQ(err, "certificate for alpha expired on 2026-01-02T03:04:05Z");
  EXPECT_FALSE(check_cert(out, {ca.pub}, {}, kNb - 1, err));
  EXPECT_EQ(err, "certificate for alpha is not valid before 2026-01-01T00:00:00Z");
  EXPECT_FALSE(check_cert(out, {other.pub}, {}, kNb + 1, err));
  EXPECT_EQ(err.find("certificate for alpha is signed by an untrusted CA"), 0u) << err;
  EXPECT_FALSE(check_cert(out, {}, {}, kNb + 1, err));
  EXPECT_EQ(err.find("certificate for alpha is signed by an untrusted CA"), 0u) << err;
  EXPECT_FALSE(check_cert(out, {ca.pub}, {random_key(), c.key}, kNb + 1, err));
  EXPECT_EQ(err.find("key of alpha is revoked"), 0u) << err;
  EXPECT_TRUE(check_cert(out, {other.pub, ca.pub}, {random_key()}, kNb + 1, err)) << err;

  // A certificate from another CA parses (its signature is good) but is not trusted.
  ASSERT_TRUE(parse_cert(sign_cert(other, c), out, err)) << err;
  EXPECT_FALSE(check_cert(out, {ca.pub}, {}, kNb + 1, err));
  EXPECT_NE(err.find(key_fingerprint(other.pub)), std::string::npos) << err;
}

TEST(IdentityCert, FuzzNeverCrashes) {
  CaKey ca = make_ca();
  std::string text = sign_cert(ca, sample_cert()), err;
  Cert out;
  uint32_t seed = 12345;
  auto rnd = [&seed] { return seed = seed * 1103515245u + 12345u, seed >> 8; };
  for (int i = 0; i < 3000; ++i) {
    std::string bad = text;
    int edits = 1 + rnd() % 4;
    for (int e = 0; e < edits; ++e) {
      size_t at = rnd() % bad.size();
      switch (rnd() % 3) {
        case 0:
          bad[at] = char(rnd());
          break;
        case 1:
          bad.erase(at, 1 + rnd() % 8);
          break;
        default:
          bad.insert(at, 1, char(rnd()));
          break;
      }
      if (bad.empty()) bad = "x";
    }
    if (bad != text) {
      EXPECT_FALSE(parse_cert(bad, out, err));
    }
  }
}
