// Baseline for running jobs: posix_spawn + wait of /bin/true, PARALLEL at a
// time, COUNT in all. Prints one JSON object with jobs per second.
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

extern char** environ;

int main(int argc, char** argv) {
  long count = argc > 1 ? strtol(argv[1], nullptr, 10) : 1000;
  long parallel = argc > 2 ? strtol(argv[2], nullptr, 10) : 1;
  char* args[] = {const_cast<char*>("/bin/true"), nullptr};
  auto t0 = std::chrono::steady_clock::now();
  long started = 0, done = 0, running = 0;
  while (done < count) {
    while (running < parallel && started < count) {
      pid_t pid;
      if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, args, environ) != 0) {
        perror("posix_spawn");
        return 1;
      }
      ++started;
      ++running;
    }
    int st;
    if (wait(&st) > 0) {
      ++done;
      --running;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("{\"count\":%ld,\"parallel\":%ld,\"per_s\":%.1f,\"mean_ms\":%.3f}\n", count, parallel, double(count) / secs,
         secs * 1000 / double(count));
  return 0;
}
