#include "libexec.h"

#include <unistd.h>

#include <cstdlib>

#include "jsd_paths.h"
#include "uvx.h"

namespace jsd {

std::vector<std::string> libexec_candidates(const char* env, const std::string& self_dir) {
  // The operator's word is final: no fallback that would run other binaries.
  if (env && *env) return {env};
  return {self_dir, self_dir + "/" + JSD_LIBEXEC_RELATIVE, JSD_LIBEXEC_INSTALLED};
}

std::string choose_libexec_dir(const std::vector<std::string>& candidates) {
  for (auto& d : candidates)
    if (access((d + "/jsd-client").c_str(), X_OK) == 0 && access((d + "/jsd-queue-server").c_str(), X_OK) == 0 &&
        access((d + "/jsd-job").c_str(), X_OK) == 0)
      return d;
  return candidates.empty() ? std::string(".") : candidates.back();
}

std::string libexec_dir() { return choose_libexec_dir(libexec_candidates(getenv("JSD_LIBEXEC_DIR"), self_dir())); }

}  // namespace jsd
