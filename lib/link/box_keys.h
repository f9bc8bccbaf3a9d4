// crypto_box's shared keys, kept per pair of keys (relay.h).
//
// crypto_box_easy does an X25519 scalar multiplication for every message;
// a hub fanning relayed requests out through gateways spent ~41 % of its
// CPU there. The multiplication depends only on the two keys, so its
// result (crypto_box_beforenm) is kept here and each message costs only
// XSalsa20-Poly1305 (crypto_box_easy_afternm). The bytes on the wire are
// the same: crypto_box_easy is beforenm followed by easy_afternm.
//
// An entry is keyed by (a hash of our private key, their public key): the
// private key itself is never copied into a key, and a node whose key
// changes at a reload never opens with a shared key of its old one.
// At most max_entries are kept, the least recently used dropped first;
// every shared key is wiped (sodium_memzero) when dropped, at clear() and
// at destruction. Not thread-safe: one per loop (the listener's).
#pragma once

#include <array>
#include <cstddef>
#include <list>
#include <map>
#include <string>
#include <string_view>

#include "identity.h"

namespace jsd {

class BoxKeyCache {
 public:
  // Enough for every pinned peer of a large hub, a few hundred KiB at most.
  static constexpr size_t kDefaultMaxEntries = 4096;

  explicit BoxKeyCache(size_t max_entries = kDefaultMaxEntries) : max_(max_entries ? max_entries : 1) {}
  BoxKeyCache(const BoxKeyCache&) = delete;
  BoxKeyCache& operator=(const BoxKeyCache&) = delete;
  ~BoxKeyCache() { clear(); }

  // As seal_box and open_box (relay.h), byte for byte.
  std::string seal(const Key32& my_priv, const Key32& their_pub, std::string_view plain);
  bool open(const Key32& my_priv, const Key32& their_pub, std::string_view sealed, std::string& plain);

  size_t size() const { return by_id_.size(); }
  // Scalar multiplications done so far (a miss each): for tests and benches.
  size_t computed() const { return computed_; }
  // Every shared key wiped and dropped (a reload: keys may have been unpinned).
  void clear();

 private:
  using Id = std::array<unsigned char, 64>;  // hash of my_priv || their_pub
  struct Entry {
    Id id;
    unsigned char shared[32];
    explicit Entry(const Id& i) : id(i) {}
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();
  };
  // The shared key of the pair, computed on a miss; nullptr when their_pub
  // is a low-order point (crypto_box refuses it; never kept).
  const unsigned char* shared(const Key32& my_priv, const Key32& their_pub);

  size_t max_;
  size_t computed_ = 0;
  std::list<Entry> lru_;  // most recently used last; nodes never move in memory
  std::map<Id, std::list<Entry>::iterator> by_id_;
};

}  // namespace jsd
