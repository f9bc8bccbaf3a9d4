// jsd-job: the node's job supervisor, started by jsd-listener when it first
// needs to run a job, with an explicit argv (not for operators). See jsd(7),
// "Jobs and their supervisor", and lib/node/job_supervisor.h.
#include <cstdio>

#include "exit_codes.h"
#include "job_supervisor.h"

int main(int argc, char** argv) {
  jsd::SupervisorOptions o;
  std::string err;
  if (!jsd::parse_supervisor_args(argc, argv, o, err)) {
    fprintf(stderr, "jsd-job: error: %s\n", err.c_str());
    return jsd::kExitStartupError;
  }
  return jsd::run_supervisor(o);
}
