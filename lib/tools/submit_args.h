// jsd-submit's command line, read and checked: the options to run with, or
// what to print and the status to exit with. Kept out of its main so that
// each rule is unit-tested (submit_args_test.cpp).
#pragma once

#include <string>
#include <vector>

#include "submit.h"

namespace jsd {

struct SubmitCommand {
  bool run = false;       // true: run options (after loading its cfg from config_path)
  SubmitOptions options;  // options.cfg is not loaded here
  std::string config_path;
  // When !run: the status to exit with, and either text for standard output
  // (--help, --version; status 0) or one error line for standard error
  // ("jsd-submit: error: ... (see --help)", without its newline; 255).
  int exit_code = 0;
  std::string out, error;
};

// words: the whole command line, the program's name first.
SubmitCommand read_submit_command(const std::vector<std::string>& words);

}  // namespace jsd
