#include "identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "json_read.h"
#include "names.h"
#include "node_name.h"

namespace jsd {

namespace {

constexpr size_t kKeyText = 44;  // base64 of 32 bytes, with one '=' of padding
constexpr std::string_view kCertPrefix = "jsdcert1.";
// The NUL ends the domain so no body can be confused with a longer label.
constexpr std::string_view kCertDomain{"jsd-cert-v1\0", 12};
constexpr int64_t kMaxTime = 253402300799;  // 9999-12-31T23:59:59Z, keeps gmtime/strftime sane
constexpr size_t kMaxKeyFile = 256;         // a key line plus generous trailing whitespace

bool fail(std::string& err, std::string msg) {
  err = std::move(msg);
  return false;
}

// sodium_init is idempotent and thread-safe; calling it at each entry point
// spares callers from remembering to do it before using this file.
bool sodium_ready(std::string& err) { return sodium_init() >= 0 || fail(err, "libsodium failed to initialise"); }

std::string b64(const unsigned char* p, size_t n, int variant) {
  std::string s(sodium_base64_encoded_len(n, variant), '\0');
  sodium_bin2base64(s.data(), s.size(), p, n, variant);
  s.resize(s.size() - 1);  // drop the NUL the encoder writes
  return s;
}

// Decodes all of text or fails; re-encodes and compares so that every byte
// string has exactly one accepted text (no trailing-bit or padding games).
// Used for secrets too, so the re-encoded copy is wiped.
bool unb64(std::string_view text, int variant, void* out, size_t cap, size_t& len) {
  auto* bin = static_cast<unsigned char*>(out);
  const char* end = nullptr;
  if (sodium_base642bin(bin, cap, text.data(), text.size(), nullptr, &len, &end, variant) != 0 ||
      end != text.data() + text.size())
    return false;
  std::string again = b64(bin, len, variant);
  bool ok = again == text;
  sodium_memzero(again.data(), again.size());
  return ok;
}

// Best effort: makes the new directory entry durable too. Failure is not an
// error because the key itself is already on disk.
void fsync_parent(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

// Writes the key as one base64 line to a new 0600 file; never overwrites.
bool write_secret(const std::string& path, const char* kind, const Key32& secret, std::string& err) {
  // A fixed buffer (not std::string) so that no copy of the secret text is
  // left behind by reallocation.
  char line[kKeyText + 2];
  sodium_bin2base64(line, kKeyText + 1, secret.data(), secret.size(), sodium_base64_VARIANT_ORIGINAL);
  line[kKeyText] = '\n';
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int e = errno;
    sodium_memzero(line, sizeof line);
    return fail(err, std::string("cannot create ") + kind + " " + path + ": " + strerror(e) +
                         (e == EEXIST ? " (refusing to overwrite an existing file)" : ""));
  }
  // 45 bytes to a fresh regular file: a short write means a real error.
  ssize_t n = write(fd, line, kKeyText + 1);
  int e = n == ssize_t(kKeyText + 1) ? 0 : n < 0 ? errno : EIO;
  sodium_memzero(line, sizeof line);
  if (e == 0 && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e != 0) {
    unlink(path.c_str());  // a half-written key would only confuse the next load
    return fail(err, std::string("cannot write ") + kind + " " + path + ": " + strerror(e));
  }
  fsync_parent(path);
  return true;
}

// Reads at most `cap` bytes of a regular file into buf, refusing larger files.
// Non-regular files are refused (a FIFO would block, a device could be
// anything). With gen_flag set the file is a secret: group/others must have no
// access, and a missing file's error names the command that creates one.
bool read_small_file(const std::string& path, const std::string& kind, const char* gen_flag, char* buf, size_t cap,
                     size_t& len, std::string& err) {
  // O_NONBLOCK so that opening a FIFO returns at once and is then refused.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    err =
        "cannot open " + kind + " " + path + ": " + strerror(e) +
        (e == ENOENT && gen_flag ? std::string(" (create one with: jsd-listener ") + gen_flag + " " + path + ")" : "");
    return false;
  }
  struct stat st {};
  bool stat_ok = fstat(fd, &st) == 0;
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
  std::string why;
  if (!stat_ok || !S_ISREG(st.st_mode))
    why = kind + " " + path + " is not a regular file";
  else if (gen_flag && (st.st_mode & 077))
    why = kind + " " + path + " is accessible by group or others (mode " + mode + "); run: chmod 600 " + path;
  else if (st.st_size > off_t(cap))
    why = kind + " " + path + " is too large (over " + std::to_string(cap) + " bytes)";
  if (!why.empty()) {
    close(fd);
    return fail(err, why);
  }
  len = 0;
  int e = 0;
  while (len <= cap) {  // reads one byte past cap if the file grew meanwhile
    ssize_t n = read(fd, buf + len, cap + 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) e = errno;
    if (n <= 0) break;
    len += size_t(n);
  }
  close(fd);
  if (e != 0) return fail(err, "cannot read " + kind + " " + path + ": " + strerror(e));
  if (len > cap) return fail(err, kind + " " + path + " is too large (over " + std::to_string(cap) + " bytes)");
  return true;
}

// Trailing whitespace is what editors and `echo` add; nothing else is trimmed.
std::string_view trim_end(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Reads a secret file holding one base64 key line.
bool read_secret(const std::string& path, const char* kind, const char* gen_flag, Key32& out, std::string& err) {
  char buf[kMaxKeyFile + 1];
  size_t len = 0;
  bool ok = read_small_file(path, kind, gen_flag, buf, kMaxKeyFile, len, err);
  if (ok && !key_from_text(trim_end(std::string_view(buf, len)), out)) {
    err = std::string(kind) + " " + path + " does not hold a key (one line of 44 base64 chars)";
    ok = false;
  }
  sodium_memzero(buf, sizeof buf);
  return ok;
}

std::string utc_text(int64_t t) {
  time_t tt = time_t(t);
  struct tm tm;
  char buf[32];
  if (t < 0 || t > kMaxTime || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return "@" + std::to_string(t);
  return buf;
}

// Reads a JSON integer as int64, refusing floats and unsigned values that do
// not fit (nlohmann stores 2^63..2^64-1 as number_unsigned).
bool get_int64(const nlohmann::json& v, int64_t& out) {
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))) return false;
  out = v.get<int64_t>();
  return true;
}

bool parse_cert_impl(std::string_view text, Cert& out, std::string& err) {
  using nlohmann::json;
  if (text.size() > kMaxCertText)
    return fail(err, "invalid certificate: longer than " + std::to_string(kMaxCertText) + " bytes");
  if (text.substr(0, kCertPrefix.size()) != kCertPrefix)
    return fail(err, "invalid certificate: does not start with \"jsdcert1.\"");
  std::string_view rest = text.substr(kCertPrefix.size());
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos || rest.find('.', dot + 1) != std::string_view::npos)
    return fail(err, "invalid certificate: expected jsdcert1.<body>.<signature>");
  std::string body(dot, '\0');
  unsigned char sig[crypto_sign_BYTES];
  size_t blen = 0, slen = 0;
  if (!unb64(rest.substr(0, dot), sodium_base64_VARIANT_URLSAFE_NO_PADDING, body.data(), body.size(), blen) ||
      blen == 0)
    return fail(err, "invalid certificate: body is not base64url");
  body.resize(blen);
  if (!unb64(rest.substr(dot + 1), sodium_base64_VARIANT_URLSAFE_NO_PADDING, sig, sizeof sig, slen) ||
      slen != sizeof sig)
    return fail(err, "invalid certificate: signature is not 64 bytes of base64url");

  json j;
  if (!parse_json(body, j) || !j.is_object()) return fail(err, "invalid certificate: body is not a JSON object");

  // Verify before interpreting anything but the CA key the signature needs:
  // unsigned input never reaches the field checks below.
  Cert c;
  auto ca = j.find("ca");
  if (ca == j.end() || !ca->is_string() || !key_from_text(ca->get_ref<const std::string&>(), c.ca))
    return fail(err, "invalid certificate: \"ca\" is not a base64 key");
  std::string msg;
  msg.reserve(kCertDomain.size() + body.size());
  msg.append(kCertDomain).append(body);
  if (crypto_sign_verify_detached(sig, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), c.ca.data()) !=
      0)
    return fail(err, "invalid certificate: bad signature (CA " + key_fingerprint(c.ca) + ")");

  int64_t v = 0;
  if (!j.contains("v") || !get_int64(j["v"], v) || v != 1) return fail(err, "invalid certificate: \"v\" is not 1");
  if (!j.contains("name") || !j["name"].is_string() || !valid_node_name(j["name"].get_ref<const std::string&>()))
    return fail(err, std::string("invalid certificate: \"name\" is not a node name (") + kNodeNameRule + ")");
  c.name = j["name"].get<std::string>();
  if (!j.contains("groups") || !j["groups"].is_array())
    return fail(err, "invalid certificate for " + c.name + ": \"groups\" is not an array");
  for (const auto& g : j["groups"]) {
    if (!g.is_string() || !valid_cert_name(g.get_ref<const std::string&>()))
      return fail(err, "invalid certificate for " + c.name + ": a group is not 1..64 chars of [A-Za-z0-9._:-]");
    c.groups.push_back(g.get<std::string>());
  }
  if (!j.contains("key") || !j["key"].is_string() || !key_from_text(j["key"].get_ref<const std::string&>(), c.key))
    return fail(err, "invalid certificate for " + c.name + ": \"key\" is not a base64 key");
  if (!j.contains("nb") || !get_int64(j["nb"], c.not_before) || !j.contains("na") || !get_int64(j["na"], c.not_after))
    return fail(err, "invalid certificate for " + c.name + ": \"nb\" and \"na\" must be integers");
  if (c.not_before < 0 || c.not_after > kMaxTime || c.not_before > c.not_after)
    return fail(err, "invalid certificate for " + c.name + ": validity window is empty or out of range");
  // All seven fields are present, so any other member is unknown. A v1 reader
  // refuses it rather than silently ignore something the CA meant to restrict.
  if (j.size() != 7) return fail(err, "invalid certificate for " + c.name + ": unknown fields in body");
  out = std::move(c);
  return true;
}

}  // namespace

std::string key_to_text(const Key32& k) { return b64(k.data(), k.size(), sodium_base64_VARIANT_ORIGINAL); }

bool key_from_text(std::string_view text, Key32& out) {
  Key32 tmp;
  size_t len = 0;
  // Canonical (via unb64): exactly one text per key, so keys compare as text too.
  bool ok = text.size() == kKeyText && unb64(text, sodium_base64_VARIANT_ORIGINAL, tmp.data(), tmp.size(), len) &&
            len == tmp.size();
  if (ok) out = tmp;
  sodium_memzero(tmp.data(), tmp.size());
  return ok;
}

std::string key_fingerprint(const Key32& pub) {
  unsigned char h[32];
  std::string unused;
  sodium_ready(unused);  // BLAKE2b works even if this failed (reference code)
  crypto_generichash(h, sizeof h, pub.data(), pub.size(), nullptr, 0);
  return "b2:" + b64(h, 12, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

// The same rule as every other name in jsd: a certificate must not carry a
// name that the node would then refuse everywhere else.
bool valid_cert_name(std::string_view s) { return valid_name(s); }

bool gen_node_key_file(const std::string& path, Key32& pub, std::string& err) {
  if (!sodium_ready(err)) return false;
  Key32 priv, p;
  randombytes_buf(priv.data(), priv.size());
  // Fails only for an all-zero result, i.e. never for random input; checked anyway.
  bool ok = crypto_scalarmult_base(p.data(), priv.data()) == 0;
  if (!ok) err = "cannot derive node public key for " + path;
  ok = ok && write_secret(path, "node key file", priv, err);
  sodium_memzero(priv.data(), priv.size());
  if (ok) pub = p;
  return ok;
}

bool load_node_key(const std::string& path, Key32& priv, Key32& pub, std::string& err) {
  if (!sodium_ready(err)) return false;
  Key32 k, p;
  if (!read_secret(path, "node key file", "--gen-key", k, err)) return false;
  bool ok = crypto_scalarmult_base(p.data(), k.data()) == 0;
  if (!ok) err = "node key file " + path + " holds an unusable X25519 key";
  if (ok) priv = k;
  if (ok) pub = p;
  sodium_memzero(k.data(), k.size());
  return ok;
}

bool gen_psk_file(const std::string& path, std::string& err) {
  if (!sodium_ready(err)) return false;
  Key32 k;
  randombytes_buf(k.data(), k.size());
  bool ok = write_secret(path, "psk file", k, err);
  sodium_memzero(k.data(), k.size());
  return ok;
}

bool load_psk_file(const std::string& path, Key32& psk, std::string& err) {
  return sodium_ready(err) && read_secret(path, "psk file", "--gen-psk", psk, err);
}

void CaKey::wipe() {
  sodium_memzero(sk.data(), sk.size());
  sodium_memzero(pub.data(), pub.size());
}

bool gen_ca_file(const std::string& path, Key32& pub, std::string& err) {
  if (!sodium_ready(err)) return false;
  Key32 seed;
  CaKey ca;
  randombytes_buf(seed.data(), seed.size());
  crypto_sign_seed_keypair(ca.pub.data(), ca.sk.data(), seed.data());
  bool ok = write_secret(path, "CA key file", seed, err);
  sodium_memzero(seed.data(), seed.size());
  if (ok) pub = ca.pub;
  ca.wipe();
  return ok;
}

bool load_ca_key(const std::string& path, CaKey& ca, std::string& err) {
  if (!sodium_ready(err)) return false;
  Key32 seed;
  if (!read_secret(path, "CA key file", "--gen-ca", seed, err)) return false;
  crypto_sign_seed_keypair(ca.pub.data(), ca.sk.data(), seed.data());
  sodium_memzero(seed.data(), seed.size());
  return true;
}

std::string sign_cert(const CaKey& ca, const Cert& c) {
  std::string err;
  if (!sodium_ready(err)) return "";
  // Refuse to issue what parse_cert would refuse, so a CA never hands out a
  // certificate that no node accepts.
  if (!valid_node_name(c.name) || c.not_before < 0 || c.not_after > kMaxTime || c.not_before > c.not_after) return "";
  for (const auto& g : c.groups)
    if (!valid_cert_name(g)) return "";
  Key32 derived;
  crypto_sign_ed25519_sk_to_pk(derived.data(), ca.sk.data());
  if (derived != ca.pub) return "";

  // ordered_json keeps the documented field order; dump() is compact, and
  // names are plain ASCII so nothing is escaped.
  nlohmann::ordered_json j = {{"v", 1},
                              {"name", c.name},
                              {"groups", c.groups},
                              {"key", key_to_text(c.key)},
                              {"ca", key_to_text(ca.pub)},
                              {"nb", c.not_before},
                              {"na", c.not_after}};
  std::string body = j.dump();
  std::string msg;
  msg.reserve(kCertDomain.size() + body.size());
  msg.append(kCertDomain).append(body);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), ca.sk.data());
  std::string text =
      std::string(kCertPrefix) +
      b64(reinterpret_cast<const unsigned char*>(body.data()), body.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
      "." + b64(sig, sizeof sig, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return text.size() > kMaxCertText ? "" : text;
}

bool parse_cert(std::string_view text, Cert& out, std::string& err) {
  if (!sodium_ready(err)) return false;
  // parse_cert_impl avoids throwing paths (allow_exceptions=false, types checked
  // before get), but allocation or a library corner case could still throw;
  // callers are promised that nothing escapes.
  try {
    return parse_cert_impl(text, out, err);
  } catch (const std::exception& e) {
    err = std::string("invalid certificate: ") + e.what();
  } catch (...) {
    err = "invalid certificate";
  }
  return false;
}

bool check_cert(const Cert& c, const std::vector<Key32>& trusted_cas, const std::vector<Key32>& revoked, int64_t now,
                std::string& err) {
  bool trusted = false;
  for (const auto& k : trusted_cas) trusted = trusted || k == c.ca;
  if (!trusted)
    return fail(err, "certificate for " + c.name + " is signed by an untrusted CA (" + key_fingerprint(c.ca) + ")");
  if (now < c.not_before)
    return fail(err, "certificate for " + c.name + " is not valid before " + utc_text(c.not_before));
  if (now > c.not_after) return fail(err, "certificate for " + c.name + " expired on " + utc_text(c.not_after));
  for (const auto& k : revoked)
    if (k == c.key) return fail(err, "key of " + c.name + " is revoked (" + key_fingerprint(c.key) + ")");
  return true;
}

bool load_cert_file(const std::string& path, Cert& out, std::string& text, std::string& err) {
  // Room for the longest certificate plus a CRLF.
  constexpr size_t cap = kMaxCertText + 2;
  std::string buf(cap + 1, '\0');
  size_t len = 0;
  if (!read_small_file(path, "certificate file", nullptr, buf.data(), cap, len, err)) return false;
  buf.resize(trim_end(std::string_view(buf.data(), len)).size());
  if (buf.find('\n') != std::string::npos) return fail(err, "certificate file " + path + " holds more than one line");
  Cert c;
  if (!parse_cert(buf, c, err)) return fail(err, "certificate file " + path + ": " + err);
  out = std::move(c);
  text = std::move(buf);
  return true;
}

}  // namespace jsd
