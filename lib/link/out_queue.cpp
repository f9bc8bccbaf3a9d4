#include "out_queue.h"

namespace jsd {

bool OutQueue::push(uint64_t seq, std::string_view payload) {
  if (!items_.empty() && seq <= items_.back().seq) return false;
  items_.push_back({seq, std::string(payload)});
  return true;
}

size_t OutQueue::ack(uint64_t seq) {
  size_t n = 0;
  for (; !items_.empty() && items_.front().seq <= seq; ++n) items_.pop_front();
  return n;
}

bool OutQueue::withdraw(uint64_t seq) {
  if (seq <= carried_upto_) return false;
  for (auto it = items_.begin(); it != items_.end(); ++it)
    if (it->seq == seq) {
      items_.erase(it);
      return true;
    }
  return false;
}

}  // namespace jsd
