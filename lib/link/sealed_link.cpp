#include "sealed_link.h"

#include "frame.h"
#include "link_msg.h"
#include "log.h"
#include "uvx.h"

namespace jsd {

SealedLink::SealedLink(const Key& tx, uint64_t tx_n, const Key& rx, uint64_t rx_n, RekeyLimits rekey, size_t max_batch,
                       std::string name)
    : chan_(tx, tx_n, rx, rx_n), rekey_(rekey), max_batch_(max_batch), name_(std::move(name)) {
  chan_.start_clock(now_ms());
}

void SealedLink::queue(std::string_view msg) {
  if (!batch_.empty() && batch_.size() + msg.size() > max_batch_) flush();
  append_frame(batch_, msg);
}

void SealedLink::flush() {
  if (!out_ || batch_.empty()) return;
  // Forward secrecy for a link that stays up for weeks: the last message
  // under the old key says so, and both ends replace it.
  uint64_t now = now_ms();
  bool rekey = chan_.rekey_due(now, rekey_);
  if (rekey) append_frame(batch_, encode_link({LinkType::rekey}));
  sealed_.clear();
  chan_.seal(batch_, sealed_);
  batch_.clear();
  if (rekey) {
    chan_.rekey_tx(now);
    log_debug(name_ + ": rekeyed (" + std::to_string(chan_.rekeys()) + ")");
  }
  out_->send(sealed_);
}

bool SealedLink::open(std::string_view frame, std::vector<std::string_view>& msgs, std::string& err) {
  msgs.clear();
  if (!chan_.open(frame, plain_)) {
    err = "frame failed authentication (forged, altered, replayed or reordered)";
    return false;
  }
  std::string_view rest = plain_, one;
  bool bad = false, rekey = false;
  while (next_frame(rest, one, bad)) {
    if (one.size() == 1 && static_cast<uint8_t>(one[0]) == static_cast<uint8_t>(LinkType::rekey))
      rekey = true;
    else
      msgs.push_back(one);
  }
  if (bad) {
    err = "malformed frame";
    return false;
  }
  // Frames after this one come under the peer's next key.
  if (rekey) chan_.rekey_rx();
  return true;
}

}  // namespace jsd
