// How the listener starts its link processes (issue 20: no exec on the path
// of a forming link): through the node's link spawner (link_spawner.h), a
// `jsd-client --spawner` started once, which forks them already past exec
// and start-up; the same way as before (posix_spawn, uvx.h's Child::spawn)
// when there is no spawner, or it is killed or does not answer in time: no
// link waits for it. A spawner that died is started again at the next
// request (at most once per restart_ms).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "link_spawner.h"
#include "uvx.h"

namespace jsd {

class LinkSpawn {
 public:
  // node: for the spawner's name in ps (LinkSpawner_NODE); enabled: the
  // configuration's link_spawner; answer_ms: how long a request may wait;
  // restart_ms: how soon a spawner that died is started again.
  LinkSpawn(uv_loop_t* loop, std::string bin_dir, std::string node, bool enabled, uint64_t answer_ms = 2000,
            uint64_t restart_ms = 1000)
      : loop_(loop),
        bin_dir_(std::move(bin_dir)),
        node_(std::move(node)),
        enabled_(enabled),
        answer_ms_(answer_ms),
        restart_ms_(restart_ms) {}
  ~LinkSpawn();
  LinkSpawn(const LinkSpawn&) = delete;
  LinkSpawn& operator=(const LinkSpawn&) = delete;

  // Starts the spawner now (the listener's start), so the first link does
  // not wait for it. False with err if it cannot (links start by exec).
  bool open(std::string& err);
  // spec.file is bin_dir/jsd-client or bin_dir/jsd-queue-server; spec.fds
  // are 0-2 as default and then the link's descriptors (fd or pipe).
  Child* start(LinkKind kind, const SpawnSpec& spec, std::string& err);
  // The listener stops: the spawner goes (its socket closes; it exits) and
  // none is started again. live() is 1 until it has exited (on_gone).
  void close();
  void kill();  // SIGKILL, for a stop that waited long enough
  int live() const { return spawner_ ? 1 : 0; }
  std::function<void()> on_gone;
  int spawner_pid() const { return spawner_ ? spawner_->pid() : 0; }
  uint64_t forked() const { return forked_; }  // link processes the spawner started
  uint64_t execs() const { return execs_; }    // ... and started by exec (posix_spawn)
  // Link processes a spawner forked but never named (it died, or was given
  // up, between its fork and its answer): killed and reaped (sweep()).
  uint64_t swept() const { return swept_; }

 private:
  Child* through_spawner(LinkKind kind, const SpawnSpec& spec, std::string& err);
  void lost(const std::string& why);
  // A process this started (a spawner, a link process): never swept.
  void known(int pid);
  // After a spawner that was lost mid-request has exited (so its fork is
  // done, if it forked): our children it forked and never named. born:
  // its start time (clock ticks after boot).
  void sweep(uint64_t born);

  uv_loop_t* loop_;
  std::string bin_dir_, node_;
  bool enabled_;
  uint64_t answer_ms_, restart_ms_;
  Child* spawner_ = nullptr;
  bool closed_ = false;
  int sock_ = -1;
  uint64_t started_ms_ = 0;  // the last start of a spawner
  uint64_t forked_ = 0, execs_ = 0, swept_ = 0;
  // pid -> start time (clock ticks since boot): what this started, so a
  // reused pid is not taken for one of them.
  std::map<int, uint64_t> known_;
  size_t pruned_at_ = 0;    // known_'s size at its last pruning
  std::set<int> sweeping_;  // killed, their reaping awaited
  // Callbacks of handles that may outlive this object hold a weak_ptr to it.
  std::shared_ptr<LinkSpawn*> self_ = std::make_shared<LinkSpawn*>(this);
};

}  // namespace jsd
