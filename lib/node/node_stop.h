// The node's stop (SIGTERM, SIGINT, a failed start-up), once the listener
// has closed its ports: every child (and the link spawner) is asked to end, and one that does not
// is killed, so nothing is left behind. A link process ends at once; a job
// has its job_kill_grace_s, and the backstop waits for that only while jobs
// run; a job supervisor that does not pass the kill on is abandoned (the
// listener kills the jobs itself; their ends are settled at the next start).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "config.h"
#include "jobs.h"
#include "link_clients.h"
#include "link_servers.h"
#include "link_spawn.h"
#include "uvx.h"

namespace jsd {

class NodeStop {
 public:
  NodeStop(uv_loop_t* loop, const Config& cfg, LinkClients& clients, LinkServers& servers, LinkSpawn& spawn,
           JobRunner& jobs)
      : loop_(loop), cfg_(cfg), clients_(clients), servers_(servers), spawn_(spawn), jobs_(jobs) {}
  // Asks every child to end and arms the kills for those that do not.
  void begin();
  // Called whenever a child or a job ends (and by begin()): once a begun
  // stop has nothing left running, its timers go and on_stopped runs, once.
  void check();
  std::function<void()> on_stopped;

  static constexpr uint64_t kLinkStopMs = 2000;          // SIGTERM -> SIGKILL for link processes
  static constexpr uint64_t kSupervisorAnswerMs = 2000;  // SIGKILL sent -> the jobs' ends

 private:
  uv_loop_t* loop_;
  const Config& cfg_;
  LinkClients& clients_;
  LinkServers& servers_;
  LinkSpawn& spawn_;  // the link spawner: the stop waits for it to be gone too
  JobRunner& jobs_;
  bool begun_ = false, stopped_ = false;
  std::unique_ptr<Timer> kill_timer_, job_kill_timer_, abandon_timer_;
};

}  // namespace jsd
