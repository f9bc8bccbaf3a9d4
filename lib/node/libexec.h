// Where jsd-listener finds the programs it starts for its links,
// jsd-client, jsd-queue-server and jsd-job (jsd-listener(8), ENVIRONMENT).
#pragma once

#include <string>
#include <vector>

namespace jsd {

// The directories to try, in order: $JSD_LIBEXEC_DIR when set (taken as
// given), else the listener's own directory (a build tree), the libexec
// directory relative to it (an installed tree, also under DESTDIR or a moved
// prefix), and the libexec directory compiled in.
std::vector<std::string> libexec_candidates(const char* env, const std::string& self_dir);

// The first candidate that holds all three programs (executable); when none does,
// the last one, so that the error names where they should be.
std::string choose_libexec_dir(const std::vector<std::string>& candidates);

// choose_libexec_dir(libexec_candidates($JSD_LIBEXEC_DIR, self_dir())).
std::string libexec_dir();

}  // namespace jsd
