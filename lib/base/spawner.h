// The one way jsd starts a process: the listener's link processes (uvx.h's
// Child), the node's job supervisor, and every job it runs.
//
// posix_spawn (vfork-style in glibc: the parent's address space is not
// copied, and the parent waits only until the exec, which reports its
// failure as the return value). The child gets:
//   - the program and argv exactly as given: no shell, ever;
//   - descriptors 0..n-1 from fds and nothing else of ours (closefrom n in
//     the child, so even a descriptor some library opened without
//     close-on-exec stays behind);
//   - no blocked signals and default dispositions;
//   - its own session and process group when new_session (its group is
//     signalled as one and a signal to ours does not reach it).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace jsd {

struct ProcessSpec {
  // A path, or a name without '/' looked up in the PATH of env (of ours
  // when env is null), as execvp would.
  std::string file;
  std::vector<std::string> argv;                  // argv[0] included
  const std::vector<std::string>* env = nullptr;  // null: ours
  std::string cwd;                                // "": ours
  // fds[i] becomes the child's descriptor i; -1: /dev/null. A source may
  // be any of ours, one among 0..n-1 included.
  std::vector<int> fds = {-1, 1, 2};
  bool new_session = false;
};

// 0 with pid set, or the errno why not: the lookup's (ENOENT, EACCES), a
// chdir's, the exec's, or the system's (EAGAIN, ENOMEM, EMFILE).
int spawn_process(const ProcessSpec& spec, pid_t& pid);

// The executable name means, looked up in path (a PATH value) as execvp
// would; "" with err (ENOENT, or EACCES when only a non-executable file of
// that name was found). A name with a '/' is itself.
std::string find_program(const std::string& name, const std::string& path, int& err);

// The PATH of env (a job's environment), or of ours when env is null; the
// default of /usr/local/bin:/usr/bin:/bin when it has none.
std::string search_path(const std::vector<std::string>* env);

}  // namespace jsd
