#include "crypto.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jsd {

using nlohmann::json;

bool crypto_init(std::string& err) {
  if (sodium_init() < 0) {
    err = "libsodium failed to initialise";
    return false;
  }
  return true;
}

void wipe(Key& k) { sodium_memzero(k.data(), k.size()); }

std::string to_hex(const unsigned char* p, size_t n) {
  std::string s(n * 2 + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), p, n);
  s.resize(n * 2);
  return s;
}

bool from_hex(std::string_view hex, unsigned char* out, size_t n) {
  size_t len = 0;
  const char* end = nullptr;
  if (hex.size() != n * 2) return false;
  if (sodium_hex2bin(out, n, hex.data(), hex.size(), nullptr, &len, &end) != 0) return false;
  return len == n && end == hex.data() + hex.size();
}

bool generate_key_file(const std::string& path, std::string& err) {
  Key k;
  randombytes_buf(k.data(), k.size());
  std::string text = to_hex(k.data(), k.size()) + "\n";
  sodium_memzero(k.data(), k.size());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    err = "cannot create key file " + path + ": " + strerror(errno) +
          (errno == EEXIST ? " (refusing to overwrite an existing key)" : "");
    sodium_memzero(text.data(), text.size());
    return false;
  }
  bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size()) && fsync(fd) == 0;
  int saved = errno;
  sodium_memzero(text.data(), text.size());
  if (close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    err = "cannot write key file " + path + ": " + strerror(saved);
    unlink(path.c_str());
  }
  return ok;
}

bool load_key_file(const std::string& path, Key& key, std::string& err) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = "cannot open key file " + path + ": " + strerror(errno) +
          (errno == ENOENT ? " (create one with: jsd-listener --gen-key " + path + ")" : "");
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    err = "key file " + path + " is not a regular file";
    return false;
  }
  if (st.st_mode & 077) {
    close(fd);
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    err = "key file " + path + " is readable by others (mode " + mode + "); run: chmod 600 " + path;
    return false;
  }
  char buf[200];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  std::string_view text(buf, n > 0 ? size_t(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  bool ok = from_hex(text, key.data(), key.size());
  sodium_memzero(buf, sizeof buf);
  if (!ok) err = "key file " + path + " does not hold a jsd key (64 hex digits)";
  return ok;
}

void SessionKeys::wipe() {
  sodium_memzero(c2s.data(), c2s.size());
  sodium_memzero(s2c.data(), s2c.size());
}

namespace {

void hash_field(crypto_generichash_state& st, std::string_view s) {
  unsigned char len[4] = {static_cast<unsigned char>(s.size() >> 24), static_cast<unsigned char>(s.size() >> 16),
                          static_cast<unsigned char>(s.size() >> 8), static_cast<unsigned char>(s.size())};
  crypto_generichash_update(&st, len, 4);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

// Binds everything both sides said: names, address, both nonces.
void make_transcript(unsigned char out[32], const std::string& cnode, const std::string& caddr,
                     const unsigned char nc[32], const std::string& snode, const unsigned char ns[32]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  hash_field(st, "jsd-handshake-v1");
  hash_field(st, cnode);
  hash_field(st, caddr);
  crypto_generichash_update(&st, nc, 32);
  hash_field(st, snode);
  crypto_generichash_update(&st, ns, 32);
  crypto_generichash_final(&st, out, 32);
}

std::string mac(const Key& k, std::string_view label, const unsigned char t[32], std::string_view extra = {}) {
  crypto_auth_hmacsha512256_state st;
  crypto_auth_hmacsha512256_init(&st, k.data(), k.size());
  crypto_auth_hmacsha512256_update(&st, reinterpret_cast<const unsigned char*>(label.data()), label.size());
  crypto_auth_hmacsha512256_update(&st, t, 32);
  crypto_auth_hmacsha512256_update(&st, reinterpret_cast<const unsigned char*>(extra.data()), extra.size());
  unsigned char out[crypto_auth_hmacsha512256_BYTES];
  crypto_auth_hmacsha512256_final(&st, out);
  return to_hex(out, sizeof out);
}

bool mac_ok(const std::string& expected_hex, const json& j) {
  if (!j.contains("mac") || !j["mac"].is_string()) return false;
  std::string got = j["mac"].get<std::string>();
  if (got.size() != expected_hex.size()) return false;
  return sodium_memcmp(got.data(), expected_hex.data(), got.size()) == 0;
}

SessionKeys derive(const Key& k, const unsigned char t[32]) {
  unsigned char master[crypto_kdf_KEYBYTES];
  crypto_generichash_state st;
  crypto_generichash_init(&st, k.data(), k.size(), sizeof master);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>("jsd-session-v1"), 14);
  crypto_generichash_update(&st, t, 32);
  crypto_generichash_final(&st, master, sizeof master);
  SessionKeys s;
  crypto_kdf_derive_from_key(s.c2s.data(), s.c2s.size(), 1, "jsdlink_", master);
  crypto_kdf_derive_from_key(s.s2c.data(), s.s2c.size(), 2, "jsdlink_", master);
  sodium_memzero(master, sizeof master);
  return s;
}

bool parse_msg(std::string_view msg, const char* type, json& j, std::string& err) {
  j = json::parse(msg, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("t") || !j["t"].is_string()) {
    err = "malformed handshake message";
    return false;
  }
  if (j["t"] == "refused") {
    std::string reason = j.contains("reason") && j["reason"].is_string() ? j["reason"].get<std::string>() : "no reason given";
    err = "refused: " + reason.substr(0, 200);
    return false;
  }
  if (j["t"] != type) {
    err = std::string("unexpected handshake message (wanted ") + type + ")";
    return false;
  }
  return true;
}

bool get_nonce(const json& j, unsigned char out[32]) {
  return j.contains("nonce") && j["nonce"].is_string() && from_hex(j["nonce"].get<std::string>(), out, 32);
}

}  // namespace

HandshakeClient::HandshakeClient(const Key& k, std::string node, std::string addr)
    : k_(k), node_(std::move(node)), addr_(std::move(addr)) {
  randombytes_buf(nonce_c_, sizeof nonce_c_);
}

std::string HandshakeClient::hello() {
  json j = {{"t", "hello"}, {"v", 1}, {"node", node_}, {"addr", addr_}, {"nonce", to_hex(nonce_c_, 32)}};
  return j.dump();
}

bool HandshakeClient::on_challenge(std::string_view msg, std::string& proof, std::string& err) {
  json j;
  if (!parse_msg(msg, "challenge", j, err)) return false;
  if (!j.contains("node") || !j["node"].is_string() || !get_nonce(j, nonce_s_)) {
    err = "malformed challenge";
    return false;
  }
  server_node_ = j["node"].get<std::string>();
  make_transcript(transcript_, node_, addr_, nonce_c_, server_node_, nonce_s_);
  if (!mac_ok(mac(k_, "server", transcript_), j)) {
    err = "the remote node does not hold our key (wrong key_file on one side?)";
    return false;
  }
  proof = json{{"t", "proof"}, {"mac", mac(k_, "client", transcript_)}}.dump();
  return true;
}

bool HandshakeClient::on_accept(std::string_view msg, uint16_t& port, std::string& err) {
  json j;
  if (!parse_msg(msg, "accept", j, err)) return false;
  if (!j.contains("port") || !j["port"].is_number_integer() || j["port"].get<int>() < 1 || j["port"].get<int>() > 65535) {
    err = "malformed accept";
    return false;
  }
  port = static_cast<uint16_t>(j["port"].get<int>());
  if (!mac_ok(mac(k_, "accept", transcript_, std::to_string(port)), j)) {
    err = "accept message failed authentication";
    return false;
  }
  return true;
}

SessionKeys HandshakeClient::keys() const { return derive(k_, transcript_); }

HandshakeServer::HandshakeServer(const Key& k, std::string node) : k_(k), node_(std::move(node)) {
  randombytes_buf(nonce_s_, sizeof nonce_s_);
}

bool HandshakeServer::on_hello(std::string_view msg, std::string& err) {
  json j;
  if (!parse_msg(msg, "hello", j, err)) return false;
  if (!j.contains("v") || j["v"] != 1) {
    err = "unsupported protocol version";
    return false;
  }
  if (!j.contains("node") || !j["node"].is_string() || !j.contains("addr") || !j["addr"].is_string() ||
      !get_nonce(j, nonce_c_)) {
    err = "malformed hello";
    return false;
  }
  client_node_ = j["node"].get<std::string>();
  client_addr_ = j["addr"].get<std::string>();
  return true;
}

std::string HandshakeServer::challenge() {
  make_transcript(transcript_, client_node_, client_addr_, nonce_c_, node_, nonce_s_);
  return json{{"t", "challenge"}, {"node", node_}, {"nonce", to_hex(nonce_s_, 32)}, {"mac", mac(k_, "server", transcript_)}}
      .dump();
}

bool HandshakeServer::on_proof(std::string_view msg, std::string& err) {
  json j;
  if (!parse_msg(msg, "proof", j, err)) return false;
  if (!mac_ok(mac(k_, "client", transcript_), j)) {
    err = "authentication failed: the peer does not hold this node's key";
    return false;
  }
  return true;
}

std::string HandshakeServer::accept(uint16_t port) {
  return json{{"t", "accept"}, {"port", port}, {"mac", mac(k_, "accept", transcript_, std::to_string(port))}}.dump();
}

std::string HandshakeServer::refuse(const std::string& reason) {
  return json{{"t", "refused"}, {"reason", reason}}.dump();
}

SessionKeys HandshakeServer::keys() const { return derive(k_, transcript_); }

SecureChannel::~SecureChannel() {
  sodium_memzero(tx_.data(), tx_.size());
  sodium_memzero(rx_.data(), rx_.size());
}

namespace {
void counter_nonce(unsigned char n[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t c) {
  memset(n, 0, crypto_aead_chacha20poly1305_IETF_NPUBBYTES);
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<unsigned char>(c >> (8 * i));
}
}  // namespace

void SecureChannel::seal(std::string_view plain, std::string& out) {
  unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  counter_nonce(nonce, tx_n_++);
  size_t at = out.size();
  out.resize(at + plain.size() + kMacBytes);
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data() + at), &clen,
                                            reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                                            nullptr, 0, nullptr, nonce, tx_.data());
}

bool SecureChannel::open(std::string_view cipher, std::string& plain) {
  if (cipher.size() < kMacBytes) return false;
  unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  counter_nonce(nonce, rx_n_);
  plain.resize(cipher.size() - kMacBytes);
  unsigned long long plen = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr,
                                                reinterpret_cast<const unsigned char*>(cipher.data()), cipher.size(),
                                                nullptr, 0, nonce, rx_.data()) != 0)
    return false;
  ++rx_n_;
  return true;
}

}  // namespace jsd
