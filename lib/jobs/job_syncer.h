// The thread of the node's job supervisor that makes ends durable
// (job_supervisor.h). Only the supervisor includes this.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace jsd::supervisor_parts {

// Makes written files durable off the loop: an fsync costs milliseconds on
// a VM, and the next job's start (a listener waiting for its answer) must
// not wait behind the last job's end. A file is complete and renamed into
// place before it gets here, so a process crash loses nothing; only a power
// cut in the moment before its fsync can (the listener then finds no end
// and records the job lost).
class Syncer {
 public:
  // The thread takes no signal: SIGCHLD must stay pending for the loop's
  // signalfd (a thread with it unblocked would swallow it, and a job's
  // end would go unnoticed).
  Syncer() {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    t_ = std::thread([this] { run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~Syncer() {
    {
      std::lock_guard<std::mutex> l(m_);
      done_ = true;
    }
    cv_.notify_one();
    t_.join();
  }
  void push(std::string path) {
    {
      std::lock_guard<std::mutex> l(m_);
      q_.push_back(std::move(path));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> l(m_);
    for (;;) {
      cv_.wait(l, [this] { return done_ || !q_.empty(); });
      if (q_.empty()) return;
      std::string path = std::move(q_.front());
      q_.pop_front();
      l.unlock();
      for (const std::string& p : {path, path.substr(0, path.rfind('/'))}) {
        int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) fsync(fd), close(fd);
      }
      l.lock();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> q_;
  bool done_ = false;
  std::thread t_;
};

}  // namespace jsd::supervisor_parts
