#include "relay.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "jsd_limits.h"
#include "json_out.h"
#include "json_read.h"
#include "names.h"
#include "node_name.h"
#include "wire.h"

namespace jsd {

namespace {
constexpr std::string_view kMagic = "jsd-relay-v2";
constexpr size_t kRidBytes = 16;
}  // namespace

std::string new_relay_id() {
  std::string rid(kRidBytes, '\0');
  randombytes_buf(rid.data(), rid.size());
  return rid;
}

std::string encode_relay_request(const RelayRequest& r) {
  std::string out;
  size_t n = kMagic.size() + WireWriter::str8_size(r.origin) + WireWriter::str8_size(r.target) + 8 + kRidBytes + 1 +
             WireWriter::str8_size(r.object) + WireWriter::str32_size(r.body) + WireWriter::str8_size(r.cert_hash);
  WireWriter w(out, n);
  w.bytes(kMagic);
  w.str8(r.origin);
  w.str8(r.target);
  w.u64(r.sealed_ms);
  std::string rid = r.rid;
  rid.resize(kRidBytes, '\0');
  w.bytes(rid);
  w.u8(static_cast<uint8_t>(r.kind));
  w.str8(r.object);
  w.str32(r.body);
  w.str8(r.cert_hash);
  return out;
}

std::string cert_hash(const std::string& cert) {
  if (cert.empty()) return "";
  std::string h(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(h.data()), h.size(),
                     reinterpret_cast<const unsigned char*>(cert.data()), cert.size(), nullptr, 0);
  return h;
}

bool decode_relay_request(std::string_view in, RelayRequest& r, std::string& err) {
  WireReader rd(in);
  if (rd.bytes(kMagic.size()) != kMagic) {
    err = "not a relayed request (jsd-relay-v2)";
    return false;
  }
  auto str8 = [&](std::string& s) {
    size_t n = rd.u8();
    s = std::string(rd.bytes(n));
  };
  str8(r.origin);
  str8(r.target);
  r.sealed_ms = rd.u64();
  r.rid = std::string(rd.bytes(kRidBytes));
  uint8_t k = rd.u8();
  str8(r.object);
  uint32_t n = rd.u32();
  r.body = std::string(rd.bytes(n));
  str8(r.cert_hash);
  if (!rd.done()) {
    err = "a relayed request cut short or with bytes after its end";
    return false;
  }
  if (k != static_cast<uint8_t>(Kind::call) && k != static_cast<uint8_t>(Kind::notify)) {
    err = "a relayed request must be a call or a notify";
    return false;
  }
  r.kind = static_cast<Kind>(k);
  return true;
}

std::string seal_box(const Key32& my_priv, const Key32& their_pub, std::string_view plain) {
  std::string out(crypto_box_NONCEBYTES + crypto_box_MACBYTES + plain.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(o, crypto_box_NONCEBYTES);
  if (crypto_box_easy(o + crypto_box_NONCEBYTES, reinterpret_cast<const unsigned char*>(plain.data()), plain.size(), o,
                      their_pub.data(), my_priv.data()) != 0)
    return "";  // a low-order public key: nothing can be sealed for it
  return out;
}

bool open_box(const Key32& my_priv, const Key32& their_pub, std::string_view sealed, std::string& plain) {
  if (sealed.size() < crypto_box_NONCEBYTES + crypto_box_MACBYTES) return false;
  const auto* s = reinterpret_cast<const unsigned char*>(sealed.data());
  plain.assign(sealed.size() - crypto_box_NONCEBYTES - crypto_box_MACBYTES, '\0');
  if (crypto_box_open_easy(reinterpret_cast<unsigned char*>(plain.data()), s + crypto_box_NONCEBYTES,
                           sealed.size() - crypto_box_NONCEBYTES, s, their_pub.data(), my_priv.data()) != 0) {
    sodium_memzero(plain.data(), plain.size());
    plain.clear();
    return false;
  }
  return true;
}

std::string encode_envelope(const RelayEnvelope& e) {
  std::string b64(sodium_base64_encoded_len(e.box.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(e.box.data()), e.box.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  b64.resize(b64.size() - 1);  // the terminating NUL
  nlohmann::json j{
      {"origin", e.origin}, {"target", e.target}, {"object", e.object}, {"via", e.via}, {"box", std::move(b64)}};
  if (!e.cert.empty()) j["cert"] = e.cert;
  return dump_json(j);
}

bool decode_envelope(std::string_view in, RelayEnvelope& e, std::string& err) {
  nlohmann::json j;
  if (!parse_json(in, j, err) || !j.is_object()) {
    if (err.empty()) err = "not a JSON object";
    err = "malformed relay envelope: " + err;
    return false;
  }
  std::string box;
  e.cert.clear();
  if (!read_string(j, "origin", e.origin, err, Need::kRequired) ||
      !read_string(j, "target", e.target, err, Need::kRequired) ||
      !read_string(j, "object", e.object, err, Need::kRequired) || !read_strings(j, "via", e.via, err) ||
      !read_string(j, "box", box, err, Need::kRequired) || !read_string(j, "cert", e.cert, err)) {
    err = "malformed relay envelope: " + err;
    return false;
  }
  if (!valid_node_name(e.origin) || !valid_node_name(e.target)) {
    err = "malformed relay envelope: origin and target must be node names";
    return false;
  }
  if (!valid_name(e.object)) {
    err = "malformed relay envelope: invalid object name";
    return false;
  }
  if (e.cert.size() > kMaxCertText) {
    err = "malformed relay envelope: cert longer than " + std::to_string(kMaxCertText) + " bytes";
    return false;
  }
  if (e.via.size() > kMaxRelayHops) {
    err = "relayed through more than " + std::to_string(kMaxRelayHops) + " gateways";
    return false;
  }
  for (auto& g : e.via)
    if (!valid_node_name(g)) {
      err = "malformed relay envelope: via must list node names";
      return false;
    }
  e.box.assign(box.size(), '\0');
  size_t n = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(e.box.data()), e.box.size(), box.data(), box.size(), nullptr,
                        &n, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    err = "malformed relay envelope: box is not base64";
    return false;
  }
  e.box.resize(n);
  return true;
}

namespace {
constexpr std::string_view kBundleMagic = "jsd-bundle-v1";
}

size_t bundle_item_size(const RelayBundleItem& i) { return 8 + 1 + WireWriter::str32_size(i.envelope); }

std::string encode_bundle(const std::vector<RelayBundleItem>& items) {
  size_t n = kBundleMagic.size() + 4;
  for (auto& i : items) n += bundle_item_size(i);
  std::string out;
  WireWriter w(out, n);
  w.bytes(kBundleMagic);
  w.u32(static_cast<uint32_t>(items.size()));
  for (auto& i : items) {
    w.u64(i.id);
    w.u8(static_cast<uint8_t>(i.kind));
    w.str32(i.envelope);
  }
  return out;
}

bool decode_bundle(std::string_view in, std::vector<RelayBundleItem>& items, std::string& err) {
  items.clear();
  WireReader r(in);
  if (r.bytes(kBundleMagic.size()) != kBundleMagic) {
    err = "malformed relay bundle: not a jsd-bundle-v1";
    return false;
  }
  uint32_t count = r.u32();
  if (!r.ok() || count == 0 || count > kMaxBundleItems) {
    err = "malformed relay bundle: " + std::to_string(count) + " items (1 to " + std::to_string(kMaxBundleItems) +
          " allowed)";
    return false;
  }
  for (uint32_t k = 0; k < count && r.ok(); ++k) {
    RelayBundleItem i;
    i.id = r.u64();
    uint8_t kind = r.u8();
    i.envelope = std::string(r.str32());
    if (kind != static_cast<uint8_t>(Kind::call) && kind != static_cast<uint8_t>(Kind::notify)) {
      err = "malformed relay bundle: item " + std::to_string(k) + " is neither a call nor a notify";
      return false;
    }
    i.kind = static_cast<Kind>(kind);
    items.push_back(std::move(i));
  }
  if (!r.done()) {
    err = "malformed relay bundle: cut short or trailing bytes";
    items.clear();
    return false;
  }
  return true;
}

}  // namespace jsd
