// jsd-submit: run a job on a node and exit with its exit status. See jsd-submit(1).
#include <cstdio>

#include "cli.h"
#include "exit_codes.h"
#include "submit.h"
#include "submit_args.h"

int main(int argc, char** argv) {
  jsd::SubmitCommand c = jsd::read_submit_command({argv, argv + argc});
  if (!c.run) {
    fputs(c.out.c_str(), stdout);
    if (!c.error.empty()) fprintf(stderr, "%s\n", c.error.c_str());
    return c.exit_code;
  }
  if (!jsd::cli_load_config("jsd-submit", c.config_path, c.options.cfg)) return jsd::kExitJsdFailure;
  return jsd::run_submit(c.options);
}
