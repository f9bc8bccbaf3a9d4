// The output of a job run on several nodes, as jsd-submit prints it: every
// line prefixed "NODE: " as it comes (like pdsh; stdout lines to stdout,
// stderr lines to stderr), or, with --gather, each distinct output once at
// the end, headed by the nodes that produced it (like dshbak -c, clush -b).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace jsd {

// A line longer than this is cut and printed in pieces (each prefixed), so
// a job that never prints a newline cannot grow our memory.
constexpr size_t kMaxLine = 64 * 1024;
// With --gather, what one node's stream keeps; the rest is dropped with a
// note, for the same reason.
constexpr size_t kMaxGathered = 16 << 20;

// Lines of one node's stream, prefixed. partial holds an unfinished line
// between calls; last (the stream ended) prints it with a newline added.
std::string prefix_lines(const std::string& node, std::string& partial, std::string_view bytes, bool last);

// dshbak -c: the nodes (in the order given) grouped by identical output.
// Nodes with no output are left out.
std::string gather_text(const std::vector<std::pair<std::string, std::string>>& outputs);

class NodeOutput {
 public:
  NodeOutput(bool gather, int out_fd, int err_fd) : gather_(gather), fd_{out_fd, err_fd} {}
  // bytes of node's stdout (stream 0) or stderr (1).
  void data(const std::string& node, int stream, std::string_view bytes);
  // node ended: its unfinished lines are printed.
  void node_done(const std::string& node);
  // --gather: prints what was gathered, in the order the nodes are given.
  void finish(const std::vector<std::string>& order);

 private:
  struct Streams {
    std::string buf[2];  // a partial line, or (gather) everything
    bool cut[2] = {false, false};
  };
  bool gather_;
  int fd_[2];
  std::map<std::string, Streams> nodes_;
};

// Writes all of d to fd (EINTR retried); a reader that went away ends it.
void write_all_fd(int fd, std::string_view d);

}  // namespace jsd
