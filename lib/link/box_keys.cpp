#include "box_keys.h"

#include <sodium.h>

#include <cstring>

namespace jsd {

BoxKeyCache::Entry::~Entry() { sodium_memzero(shared, sizeof shared); }

void BoxKeyCache::clear() {
  by_id_.clear();
  lru_.clear();  // each Entry wipes its shared key as it goes
}

const unsigned char* BoxKeyCache::shared(const Key32& my_priv, const Key32& their_pub) {
  Id id{};
  // A hash stands for our private key: the cache's index must not be one
  // more copy of the secret. BLAKE2b costs well under a microsecond, against
  // tens for the scalar multiplication it saves.
  crypto_generichash(id.data(), 32, my_priv.data(), my_priv.size(), nullptr, 0);
  std::memcpy(id.data() + 32, their_pub.data(), their_pub.size());
  auto it = by_id_.find(id);
  if (it != by_id_.end()) {
    lru_.splice(lru_.end(), lru_, it->second);
    return it->second->shared;
  }
  unsigned char k[crypto_box_BEFORENMBYTES];
  ++computed_;
  // -1: their_pub is a low-order point (an all-zero shared secret), which
  // crypto_box_easy refuses as well; nothing is kept for it.
  if (crypto_box_beforenm(k, their_pub.data(), my_priv.data()) != 0) {
    sodium_memzero(k, sizeof k);
    return nullptr;
  }
  static_assert(sizeof(Entry::shared) == crypto_box_BEFORENMBYTES);
  if (by_id_.size() >= max_) {
    by_id_.erase(lru_.front().id);
    lru_.pop_front();
  }
  Entry& e = lru_.emplace_back(id);
  std::memcpy(e.shared, k, sizeof k);
  sodium_memzero(k, sizeof k);
  by_id_.emplace(id, std::prev(lru_.end()));
  return e.shared;
}

std::string BoxKeyCache::seal(const Key32& my_priv, const Key32& their_pub, std::string_view plain) {
  const unsigned char* k = shared(my_priv, their_pub);
  if (!k) return "";
  std::string out(crypto_box_NONCEBYTES + crypto_box_MACBYTES + plain.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(o, crypto_box_NONCEBYTES);
  if (crypto_box_easy_afternm(o + crypto_box_NONCEBYTES, reinterpret_cast<const unsigned char*>(plain.data()),
                              plain.size(), o, k) != 0)
    return "";  // a message too long for crypto_box
  return out;
}

bool BoxKeyCache::open(const Key32& my_priv, const Key32& their_pub, std::string_view sealed, std::string& plain) {
  if (sealed.size() < crypto_box_NONCEBYTES + crypto_box_MACBYTES) return false;
  const unsigned char* k = shared(my_priv, their_pub);
  if (!k) {
    plain.clear();  // as open_box, whose crypto_box_open_easy fails there
    return false;
  }
  const auto* s = reinterpret_cast<const unsigned char*>(sealed.data());
  plain.assign(sealed.size() - crypto_box_NONCEBYTES - crypto_box_MACBYTES, '\0');
  if (crypto_box_open_easy_afternm(reinterpret_cast<unsigned char*>(plain.data()), s + crypto_box_NONCEBYTES,
                                   sealed.size() - crypto_box_NONCEBYTES, s, k) != 0) {
    sodium_memzero(plain.data(), plain.size());
    plain.clear();
    return false;
  }
  return true;
}

}  // namespace jsd
