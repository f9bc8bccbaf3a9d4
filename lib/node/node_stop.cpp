#include "node_stop.h"

#include "log.h"

namespace jsd {

void NodeStop::begin() {
  if (begun_) return;
  begun_ = true;
  // Children that ignore SIGTERM get SIGKILL: nothing is left behind. A
  // link process ends at once (SIGCONT wakes a stopped one); a job has its
  // job_kill_grace_s from its own run, and the backstop here waits for that
  // only while jobs run: the stop takes what its children need, no more.
  // (Armed first: with nothing left to end, stop_all() finishes the stop.)
  kill_timer_ = std::make_unique<Timer>(loop_);
  kill_timer_->start(kLinkStopMs, [this] {
    clients_.kill();
    servers_.kill();
    spawn_.kill();
  });
  if (jobs_.running() > 0) {
    job_kill_timer_ = std::make_unique<Timer>(loop_);
    job_kill_timer_->start(uint64_t(cfg_.job_kill_grace_s * 1000) + 1000, [this] {
      jobs_.kill_all();
      // A supervisor that does not pass the SIGKILL on in this time is
      // hung: the node stops anyway, killing the jobs itself.
      abandon_timer_ = std::make_unique<Timer>(loop_);
      abandon_timer_->start(kSupervisorAnswerMs, [this] {
        if (size_t n = jobs_.abandon())
          log_error("the job supervisor does not answer: " + std::to_string(n) +
                    " job(s) killed without it; their ends are settled at the next start");
        check();
      });
    });
  }
  clients_.stop();
  servers_.stop();
  jobs_.stop_all();
  check();
}

void NodeStop::check() {
  if (!begun_ || stopped_ || clients_.live() > 0 || servers_.live() > 0 || spawn_.live() > 0 || jobs_.running() > 0)
    return;
  stopped_ = true;
  kill_timer_.reset();
  job_kill_timer_.reset();
  abandon_timer_.reset();
  clients_.clear();
  servers_.clear();
  if (on_stopped) on_stopped();
}

}  // namespace jsd
