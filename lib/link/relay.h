// Relayed requests: a call or notify an originator sends to a node it has
// no link to, through one or more gateways ("via" in jsd.conf(5)).
//
// A gateway carries it but is not trusted with it: the originator seals the
// request for its target with NaCl's crypto_box (X25519, XSalsa20-Poly1305:
// libsodium's crypto_box_easy) from its own static key to the target's.
// Only the originator or the target can make a box that opens with that
// pair of keys, so a box that opens at the target was made by the
// originator, and says everything the target acts on: who sent it, to whom,
// when, a random request id, and the event (kind, object, body). The target
// refuses a box it cannot open with the originator's pinned key, one whose
// contents disagree with its envelope, one sealed outside its validity
// window (relay_window_s), and one whose id it has seen (a replay).
//
// On the link, a relayed request is an event to the object "relay" whose
// body is the envelope (JSON): what each hop needs to route it, in clear,
// and the box:
//   {"origin":"alpha","target":"gamma","object":"job","via":["beta"],"box":"<base64>"}
// via lists the gateways it has passed, each appended by that gateway.
//
// An originator with a certificate adds "cert":"jsdcert1..." (see below).
//
// The box's plaintext (binary, big-endian, wire.h):
//   "jsd-relay-v2" (12 bytes), origin str8, target str8, sealed_ms u64,
//   rid (16 bytes), kind u8, object str8, body str32, cert_hash str8
// cert_hash: BLAKE2b-256 of the certificate its envelope carries (empty:
// none), so that a gateway cannot swap in another certificate of the
// originator (an older one, with other groups) without the box failing.
// The sealed bytes: nonce (24 random bytes) || crypto_box_easy(plaintext).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "event.h"
#include "identity.h"

namespace jsd {

struct RelayRequest {
  std::string origin, target;
  uint64_t sealed_ms = 0;  // the originator's wall clock, milliseconds
  std::string rid;         // 16 random bytes: the request's id (new_relay_id)
  Kind kind = Kind::call;
  std::string object, body;
  std::string cert_hash = {};  // cert_hash() of the envelope's cert, or ""
};
std::string new_relay_id();
// BLAKE2b-256 of a certificate's text ("" for none).
std::string cert_hash(const std::string& cert);
std::string encode_relay_request(const RelayRequest& r);
// Never throws: false with err on anything but one whole request.
bool decode_relay_request(std::string_view in, RelayRequest& r, std::string& err);

constexpr size_t kRelayBoxOverhead = 24 + 16;  // nonce + Poly1305 tag
// nonce || crypto_box_easy(plain, nonce, their_pub, my_priv).
// These compute the shared key each time (an X25519 multiplication): a
// node that seals or opens many uses BoxKeyCache (box_keys.h), which makes
// the same bytes; these stay as the reference it is tested against.
std::string seal_box(const Key32& my_priv, const Key32& their_pub, std::string_view plain);
// False when sealed was not made by the holder of their_pub's private key
// for my_priv's (or was altered, or cut).
bool open_box(const Key32& my_priv, const Key32& their_pub, std::string_view sealed, std::string& plain);

struct RelayEnvelope {
  std::string origin, target, object;
  std::vector<std::string> via;  // gateways passed, in order
  std::string box;               // the sealed bytes (raw)
  // The originator's certificate ("" none): a target that has no key
  // pinned for the originator opens the box with the key it certifies
  // (trusted_cas). Public, like a link's handshake payload.
  std::string cert = {};
};
// A certificate lookup: an envelope to the object "cert" with an empty box.
// Its target answers {"cert": "<its certificate>"} (or an error), so that
// an originator without a key pinned for it learns its key (checked
// against trusted_cas: a gateway can withhold a certificate, not forge one).
constexpr const char* kCertLookup = "cert";
std::string encode_envelope(const RelayEnvelope& e);
// Never throws: false with err on a malformed envelope (bad names, more
// than kMaxRelayHops gateways, a box that is not base64).
bool decode_envelope(std::string_view in, RelayEnvelope& e, std::string& err);

// A bundle: the relayed requests one node sends through one gateway in one
// turn of its loop (a fan-out), as one event to the object "relay.bundle",
// so that a fan-out through a gateway costs one event on the link, not one
// per target. The gateway handles each item as the relay event it stands
// for (id, kind, envelope), so replies, refusals and audit stay per item;
// the bundle itself is a notify nobody answers. Binary, big-endian:
//   "jsd-bundle-v1" (13 bytes), count u32, then per item:
//   id u64, kind u8, envelope str32
struct RelayBundleItem {
  uint64_t id = 0;
  Kind kind = Kind::call;
  std::string envelope;  // encode_envelope's text
};
// A bundle stays well under any max_frame a peer may set (>= 1024 bytes is
// allowed, but a relayed request is larger): one that is refused as too big
// is sent again item by item (Router::undeliverable).
constexpr size_t kMaxBundleBytes = 48 * 1024, kMaxBundleItems = 512;
size_t bundle_item_size(const RelayBundleItem& i);
std::string encode_bundle(const std::vector<RelayBundleItem>& items);
// Never throws: false with err on anything but one whole bundle of at
// most kMaxBundleItems items of known kinds (calls and notifies).
bool decode_bundle(std::string_view in, std::vector<RelayBundleItem>& items, std::string& err);

}  // namespace jsd
