#include "job_io.h"

#include "uvx.h"

namespace jsd {

namespace {
class LoopTimer : public JobTimer {
 public:
  explicit LoopTimer(uv_loop_t* loop) : t_(loop) {}
  void start(uint64_t ms, std::function<void()> fn, uint64_t repeat_ms) override {
    t_.start(ms, std::move(fn), repeat_ms);
  }
  void stop() override { t_.stop(); }
  bool active() const override { return t_.active(); }

 private:
  Timer t_;
};
}  // namespace

double LoopClock::wall_time() { return jsd::wall_time(); }
uint64_t LoopClock::now_ms() { return jsd::now_ms(); }
std::unique_ptr<JobTimer> LoopClock::timer() { return std::make_unique<LoopTimer>(loop_); }

}  // namespace jsd
