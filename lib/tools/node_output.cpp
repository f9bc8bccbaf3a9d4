#include "node_output.h"

#include <unistd.h>

#include <cerrno>

namespace jsd {

void write_all_fd(int fd, std::string_view d) {
  while (!d.empty()) {
    ssize_t n = write(fd, d.data(), d.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // reader gone: the output has nowhere to go
    d.remove_prefix(size_t(n));
  }
}

std::string prefix_lines(const std::string& node, std::string& partial, std::string_view bytes, bool last) {
  std::string out;
  for (;;) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) break;
    out += node + ": ";
    out += partial;
    out.append(bytes.substr(0, nl + 1));
    partial.clear();
    bytes.remove_prefix(nl + 1);
  }
  partial.append(bytes);
  while (partial.size() >= kMaxLine) {
    out += node + ": " + partial.substr(0, kMaxLine) + "\n";
    partial.erase(0, kMaxLine);
  }
  if (last && !partial.empty()) {
    out += node + ": " + partial + "\n";
    partial.clear();
  }
  return out;
}

std::string gather_text(const std::vector<std::pair<std::string, std::string>>& outputs) {
  // Groups in the order their first node is given; the text once.
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  std::map<std::string, size_t> index;
  for (auto& [node, text] : outputs) {
    if (text.empty()) continue;
    auto [it, fresh] = index.emplace(text, groups.size());
    if (fresh) groups.push_back({text, {}});
    groups[it->second].second.push_back(node);
  }
  std::string out;
  for (auto& [text, nodes] : groups) {
    std::string head;
    for (auto& n : nodes) head += (head.empty() ? "" : ",") + n;
    std::string rule(std::min<size_t>(std::max<size_t>(head.size(), 16), 80), '-');
    out += rule + "\n" + head + "\n" + rule + "\n" + text;
    if (text.back() != '\n') out += "\n";
  }
  return out;
}

void NodeOutput::data(const std::string& node, int stream, std::string_view bytes) {
  Streams& s = nodes_[node];
  if (!gather_) return write_all_fd(fd_[stream], prefix_lines(node, s.buf[stream], bytes, false));
  if (s.cut[stream]) return;
  if (s.buf[stream].size() + bytes.size() > kMaxGathered) {
    s.buf[stream].append(bytes.substr(0, kMaxGathered - s.buf[stream].size()));
    s.buf[stream] += "\n[jsd-submit: output cut at " + std::to_string(kMaxGathered) + " bytes]\n";
    s.cut[stream] = true;
    return;
  }
  s.buf[stream].append(bytes);
}

void NodeOutput::node_done(const std::string& node) {
  if (gather_) return;
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  for (int i = 0; i < 2; ++i)
    if (!it->second.buf[i].empty()) write_all_fd(fd_[i], prefix_lines(node, it->second.buf[i], "", true));
  nodes_.erase(it);
}

void NodeOutput::finish(const std::vector<std::string>& order) {
  if (!gather_) return;
  for (int i = 0; i < 2; ++i) {
    std::vector<std::pair<std::string, std::string>> outs;
    for (auto& n : order)
      if (auto it = nodes_.find(n); it != nodes_.end()) outs.push_back({n, it->second.buf[i]});
    write_all_fd(fd_[i], gather_text(outs));
  }
  nodes_.clear();
}

}  // namespace jsd
