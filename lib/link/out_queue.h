// A jsd-client's queue: the data messages its listener handed it, kept
// until the peer acknowledges them, in seq order. Which of them a link has
// carried is exact (they go on a link in seq order), so a withdrawn one is
// dropped only if no link ever had it.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace jsd {

class OutQueue {
 public:
  struct Item {
    uint64_t seq;
    std::string payload;  // a data message (event.h)
  };
  // False if seq is not new (a restarted listener replays what it holds).
  bool push(uint64_t seq, std::string_view payload);
  // The peer has everything up to seq; returns how many items went.
  size_t ack(uint64_t seq);
  // seq is going on a link now.
  void carried(uint64_t seq) {
    if (seq > carried_upto_) carried_upto_ = seq;
  }
  // Drops seq if no link has carried it; false if one may have (or it is
  // not here).
  bool withdraw(uint64_t seq);
  const std::deque<Item>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

 private:
  std::deque<Item> items_;
  uint64_t carried_upto_ = 0;  // the highest seq ever handed to a link
};

}  // namespace jsd
