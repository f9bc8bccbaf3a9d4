// The order in which one peer's queue-servers hand over their events: the
// replaced ones (oldest first), then the current one. What an old one
// acknowledged to the peer is still in its pipe and must be delivered
// before anything its successor brings, and nothing may be lost. Pure
// logic over a small interface, so it is unit-tested without processes.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace jsd {

class DrainSource {
 public:
  virtual ~DrainSource() = default;
  virtual bool open() const = 0;        // its pipe may still bring events
  virtual bool may_resume() const = 0;  // not paused for another reason (a slow tool)
  virtual void pause() = 0;
  virtual void resume() = 0;
  bool held = false;                  // waits behind an earlier one
  std::deque<std::string> held_msgs;  // what it read while held
};

// Walks order (oldest first): every source behind one that is still open
// is held (paused; what it already read is kept aside); the first one not
// behind an open one gets its held messages delivered, in order, and reads
// again.
inline void drain_in_order(const std::vector<DrainSource*>& order,
                           const std::function<void(DrainSource*, const std::string&)>& deliver) {
  bool earlier_open = false;
  for (DrainSource* s : order) {
    if (earlier_open) {
      if (!s->held && s->open()) s->pause();
      s->held = true;
      continue;
    }
    if (s->held) {
      s->held = false;
      std::deque<std::string> held = std::move(s->held_msgs);
      for (auto& msg : held) deliver(s, msg);
      if (s->open() && s->may_resume()) s->resume();
    }
    earlier_open = s->open();
  }
}

}  // namespace jsd
