#include "handshake.h"

#include <sodium.h>
#include <time.h>

#include <nlohmann/json.hpp>

#include "json_read.h"
#include "log.h"
#include "uvx.h"

namespace jsd {

namespace {

const char* kPrologue = "jsd link 1";

std::string protocol(bool ik, bool psk) {
  // psk1: the psk is mixed in within message 1, so the responder checks it
  // before it answers (with psk2 only the initiator would notice).
  if (ik) return psk ? "Noise_IKpsk1_25519_ChaChaPoly_BLAKE2b" : "Noise_IK_25519_ChaChaPoly_BLAKE2b";
  return psk ? "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b" : "Noise_XX_25519_ChaChaPoly_BLAKE2b";
}

// A handshake config holds copies of the static key and the psk: wiped as
// soon as the handshake state has taken them.
struct WipedConfig : noise::HandshakeConfig {
  ~WipedConfig() {
    for (auto& k : psks) sodium_memzero(k.data(), k.size());
  }
};

WipedConfig config(const Trust& t, bool ik, bool initiator, const std::optional<Key32>& rs) {
  WipedConfig c;
  c.protocol_name = protocol(ik, t.has_psk());
  c.initiator = initiator;
  c.prologue = kPrologue;
  c.s = t.self();
  c.rs = rs;
  if (t.has_psk()) c.psks.push_back(t.psk());
  return c;
}

// The JSON payloads: typed reads that never throw.
bool get_str(const nlohmann::json& j, const char* key, std::string& out, bool required) {
  auto it = j.find(key);
  if (it == j.end()) return !required;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

SessionKeys keys_from(noise::CipherState& c1, noise::CipherState& c2) {
  SessionKeys k;
  k.c2s = c1.key();
  k.s2c = c2.key();
  k.c2s_n = c1.nonce();
  k.s2c_n = c2.nonce();
  c1.wipe();
  c2.wipe();
  return k;
}

}  // namespace

uint64_t next_hello_time() {
  static uint64_t last = 0;  // one thread uses it: the link process's loop
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t t = uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
  last = t > last ? t : last + 1;
  return last;
}

std::string hello_to_json(const Hello& h) {
  nlohmann::json j = {{"node", h.node}, {"addr", h.addr}, {"to", h.to}};
  if (!h.cert.empty()) j["cert"] = h.cert;
  if (h.time) j["time"] = h.time;
  return j.dump();
}

bool hello_from_json(std::string_view text, Hello& h, std::string& err) {
  nlohmann::json j;
  if (!parse_json(text, j) || !j.is_object() || !get_str(j, "node", h.node, true) ||
      !get_str(j, "addr", h.addr, false) || !get_str(j, "to", h.to, false) || !get_str(j, "cert", h.cert, false)) {
    err = "malformed hello";
    return false;
  }
  h.time = 0;
  if (auto it = j.find("time"); it != j.end()) {
    if (!it->is_number_unsigned()) {
      err = "malformed hello";
      return false;
    }
    h.time = it->get<uint64_t>();
  }
  return true;
}

// --- initiator ---

LinkInitiator::LinkInitiator(const Trust& trust, Hello hello, std::string target, std::optional<Key32> server_key)
    : trust_(trust), hello_(std::move(hello)), target_(std::move(target)), server_key_(server_key) {
  hello_.cert = trust_.cert_text();
  hello_.to = target_;
}

bool LinkInitiator::first(std::string& out, std::string& err) {
  ik_ = server_key_.has_value();
  hello_.time = next_hello_time();
  if (!hs_.initialize(config(trust_, ik_, true, server_key_), err)) return false;
  out.assign(1, ik_ ? 'I' : 'X');
  out.push_back(trust_.has_psk() ? 1 : 0);
  return hs_.write_message(ik_ ? hello_to_json(hello_) : std::string(), out, err);
}

LinkInitiator::Step LinkInitiator::on_frame(std::string_view f, std::string& out, std::string& err) {
  out.clear();
  if (f.empty()) {
    err = "empty handshake message";
    return Step::failed;
  }
  char type = f[0];
  f.remove_prefix(1);
  if (type == 'R') {
    err = printable(f);
    return Step::refused;
  }
  std::string payload;
  auto parse = [&](bool want_port) {
    nlohmann::json j;
    std::string cert;
    if (!parse_json(payload, j) || !j.is_object()) return false;
    if (want_port) {
      auto it = j.find("port");
      if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > 65535)
        return false;
      port_ = static_cast<uint16_t>(it->get<uint64_t>());
      // Optional (an older node does not say). Outside what a config
      // allows it is taken as unsaid: a value near 2^64 would overflow the
      // client's size check and keep back every event.
      auto mf = j.find("max_frame");
      if (mf != j.end() && mf->is_number_unsigned() && mf->get<uint64_t>() >= 1024 &&
          mf->get<uint64_t>() <= (64u << 20))
        max_frame_ = mf->get<uint64_t>();
    }
    return want_port ? true : (get_str(j, "node", server_node_, true) && get_str(j, "cert", cert, false));
  };
  if (ik_ && type == 'A' && hs_.my_turn() == false && !split_) {
    if (!hs_.read_message(f, payload, err)) return Step::failed;
    nlohmann::json j;
    if (!parse_json(payload, j) || !j.is_object() || !get_str(j, "node", server_node_, true) || !parse(true)) {
      err = "malformed accept";
      return Step::failed;
    }
    if (!target_.empty() && server_node_ != target_) {
      err = "it is node '" + printable(server_node_) + "', not '" + target_ + "'";
      return Step::failed;
    }
    hs_.split(c1_, c2_);
    split_ = true;
    return Step::done;
  }
  if (!ik_ && type == 'x' && !hs_.my_turn() && !split_) {
    if (!hs_.read_message(f, payload, err)) return Step::failed;
    nlohmann::json j;
    std::string cert;
    if (!parse_json(payload, j) || !j.is_object() || !get_str(j, "node", server_node_, true) ||
        !get_str(j, "cert", cert, false)) {
      err = "malformed answer";
      return Step::failed;
    }
    // The responder proved it holds its static key; is that key who we want?
    auto v = trust_.check_peer(server_node_, *hs_.remote_static(), cert, static_cast<int64_t>(wall_time()));
    if (!v.ok) {
      err = "cannot authenticate " + printable(server_node_) + ": " + v.reason;
      return Step::failed;
    }
    if (!target_.empty() && server_node_ != target_) {
      err = "it is node '" + printable(server_node_) + "', not '" + target_ + "'";
      return Step::failed;
    }
    out.assign(1, 'y');
    if (!hs_.write_message(hello_to_json(hello_), out, err)) return Step::failed;
    hs_.split(c1_, c2_);
    split_ = true;
    return Step::send;
  }
  if (!ik_ && type == 'P' && split_ && port_ == 0) {
    if (!c2_.decrypt_with_ad("", f, payload) || !parse(true)) {
      err = "malformed or forged accept";
      return Step::failed;
    }
    return Step::done;
  }
  err = "unexpected handshake message";
  return Step::failed;
}

SessionKeys LinkInitiator::take_keys() { return keys_from(c1_, c2_); }

// --- responder ---

LinkResponder::LinkResponder(const Trust& trust, std::string node) : trust_(trust), node_(std::move(node)) {}

std::string LinkResponder::refuse(const std::string& reason) { return "R" + reason; }

LinkResponder::Step LinkResponder::on_frame(std::string_view f, std::string& out, std::string& err) {
  out.clear();
  ++steps_;
  if (f.size() < 2) {
    err = "short handshake message";
    return Step::failed;
  }
  char type = f[0];
  std::string payload;
  if ((type == 'I' || type == 'X') && steps_ == 1) {
    bool psk = f[1] & 1;
    if (f[1] & ~1) {
      err = "unknown handshake flags";
      out = refuse("unknown handshake flags");
      return Step::refuse;
    }
    f.remove_prefix(2);
    if (psk != trust_.has_psk()) {
      err = psk ? "the peer uses a psk and this node has none" : "missing psk (this node requires psk_file)";
      out = refuse(psk ? "unexpected psk" : "missing psk");
      return Step::refuse;
    }
    ik_ = type == 'I';
    if (!hs_.initialize(config(trust_, ik_, false, std::nullopt), err)) return Step::failed;
    if (!hs_.read_message(f, payload, err)) {
      // An IK message 1 fails to open for a wrong responder key or psk, or
      // a tampered message: the peer may need to know, so say so.
      if (err.rfind("handshake failed", 0) != 0) err = "handshake failed: " + err;
      err += (ik_ ? " (the peer has a wrong key pinned for this node, a wrong psk, or the message was altered)" : "");
      out = refuse("handshake failed");
      return Step::refuse;
    }
    if (!ik_) {
      out.assign(1, 'x');
      nlohmann::json j = {{"node", node_}};
      if (!trust_.cert_text().empty()) j["cert"] = trust_.cert_text();
      if (!hs_.write_message(j.dump(), out, err)) return Step::failed;
      return Step::send;
    }
  } else if (type == 'y' && steps_ == 2 && !ik_) {
    f.remove_prefix(1);
    if (!hs_.read_message(f, payload, err)) {
      if (err.rfind("handshake failed", 0) != 0) err = "handshake failed: " + err;
      out = refuse("handshake failed");
      return Step::refuse;
    }
  } else {
    err = "unexpected handshake message";
    return Step::failed;
  }
  if (!hello_from_json(payload, hello_, err)) {
    out = refuse("malformed hello");
    return Step::refuse;
  }
  peer_key_ = *hs_.remote_static();
  return Step::hello;
}

bool LinkResponder::accept(uint16_t port, std::string& out, std::string& err, uint64_t max_frame) {
  nlohmann::json a = {{"node", node_}, {"port", port}};
  if (max_frame) a["max_frame"] = max_frame;
  std::string payload = a.dump();
  if (ik_) {
    out.assign(1, 'A');
    if (!hs_.write_message(payload, out, err)) return false;
    hs_.split(c1_, c2_);
  } else {
    hs_.split(c1_, c2_);
    out.assign(1, 'P');
    if (!c2_.encrypt_with_ad("", payload, out)) {
      err = "cannot seal the accept";
      return false;
    }
  }
  split_ = true;
  return true;
}

SessionKeys LinkResponder::take_keys() { return keys_from(c1_, c2_); }

}  // namespace jsd
