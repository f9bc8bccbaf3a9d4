// Node identities, modelled on OpenSSH certificates and Nebula, built only
// from libsodium:
//  - node keys are X25519 (they double as Noise static keys);
//  - a cluster CA holds an Ed25519 key and signs node certificates that bind
//    a node name and groups to a node's X25519 public key for a time window;
//  - a pre-shared key (Noise psk) is 32 random bytes.
// Every key and psk is written as standard base64 of 32 raw bytes (44 chars,
// one line), like WireGuard keys. Secret files are created 0600, never
// overwritten, and refused on load if group or others may access them.
//
// Certificate text (one line, at most 4096 bytes):
//   jsdcert1.<base64url(body)>.<base64url(signature)>      (no '=' padding)
// body is compact JSON, fields in this order, no others allowed:
//   {"v":1,"name":N,"groups":[G,...],"key":B64,"ca":B64,"nb":INT,"na":INT}
// key/ca are 44-char standard base64; nb/na are unix seconds (inclusive window,
// 0 <= nb <= na <= 253402300799, i.e. up to 9999-12-31T23:59:59Z).
// signature = Ed25519-detached(ca, "jsd-cert-v1\0" || body), where body is the
// JSON bytes exactly as carried in the text (after base64url decoding).
//
// Nothing here throws; failures return false (or "") and a one-line err that
// starts with what failed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace jsd {

using Key32 = std::array<unsigned char, 32>;  // same type as jsd::noise::Key32

constexpr size_t kMaxCertText = 4096;
constexpr size_t kMaxNameLen = 64;

// Standard base64 (with '=' padding) of 32 bytes: 44 chars.
std::string key_to_text(const Key32& k);
// Strict inverse of key_to_text: exactly 44 chars, no whitespace, canonical
// encoding (the unused low bits of the last char must be zero). out is left
// untouched on failure.
bool key_from_text(std::string_view text, Key32& out);
// "b2:" + base64url without padding of the first 12 bytes of BLAKE2b-256(pub):
// 19 printable chars, e.g. "b2:q3v1Zk2m0aT9xYpL". For logs and audit only.
std::string key_fingerprint(const Key32& pub);

// 1..64 chars of [A-Za-z0-9._:-]; the rule for certificate names and groups.
bool valid_cert_name(std::string_view s);

// Node key (X25519): the file holds the private key in base64.
bool gen_node_key_file(const std::string& path, Key32& pub, std::string& err);
// pub = crypto_scalarmult_base(priv).
bool load_node_key(const std::string& path, Key32& priv, Key32& pub, std::string& err);
// Pre-shared key (Noise psk): 32 random bytes in base64.
bool gen_psk_file(const std::string& path, std::string& err);
bool load_psk_file(const std::string& path, Key32& psk, std::string& err);

// Cluster CA (Ed25519). The file holds the 32-byte seed in base64; sk is the
// libsodium 64-byte secret key (seed || pub).
struct CaKey {
  std::array<unsigned char, 64> sk{};
  Key32 pub{};
  void wipe();
};
bool gen_ca_file(const std::string& path, Key32& pub, std::string& err);
bool load_ca_key(const std::string& path, CaKey& ca, std::string& err);

struct Cert {
  std::string name;                       // node name, 1..64 of [A-Za-z0-9._:-]
  std::vector<std::string> groups;        // same charset
  Key32 key{};                            // the node's X25519 public key
  Key32 ca{};                             // the signing CA's Ed25519 public key
  int64_t not_before = 0, not_after = 0;  // unix seconds, inclusive
};

// c.ca is ignored and set from ca.pub. Returns "" if c is not representable
// (bad name or group, nb > na, times out of range, text over 4096 bytes) or if
// ca.sk does not match ca.pub.
std::string sign_cert(const CaKey& ca, const Cert& c);
// Parses and verifies the signature against the CA key embedded in the body
// (whether that CA is trusted is check_cert's job). out is set only on success.
bool parse_cert(std::string_view text, Cert& out, std::string& err);
// Is this certificate (as returned by parse_cert, i.e. signature already
// verified) acceptable at `now`? Issued by one of trusted_cas, now within
// [not_before, not_after], key not in revoked.
bool check_cert(const Cert& c, const std::vector<Key32>& trusted_cas, const std::vector<Key32>& revoked, int64_t now,
                std::string& err);
// Reads a file holding one certificate line (a trailing newline is allowed),
// returns the line in text and the parsed certificate in out.
bool load_cert_file(const std::string& path, Cert& out, std::string& text, std::string& err);

}  // namespace jsd
