// Files written so that a crash leaves either the old or the new content,
// and the directories they live in.
#pragma once

#include <string>

namespace jsd {

// Writes data to path atomically: temporary file (path + tmp_suffix), optional
// fsync, rename, optional fsync of the directory (so the rename survives a
// crash too). The file gets mode (umask aside: a file others must read, such
// as the metrics for node_exporter, is written 0644 whatever the umask).
bool write_file_atomic(const std::string& path, const std::string& data, bool sync, std::string& err,
                       const std::string& tmp_suffix = ".tmp", unsigned mode = 0600);
// Creates dir and its missing parents, mode 0700.
bool make_dir(const std::string& dir, std::string& err);
// Reads a whole file into out.
bool read_file(const std::string& path, std::string& out, std::string& err);
// Marks every open descriptor from lowfd up close-on-exec: a daemon started
// from a shell inherits whatever that shell had open, and descriptors are
// capabilities that must not reach what it runs. False (errno set) if
// neither close_range nor /proc/self/fd worked.
bool cloexec_from(int lowfd);

}  // namespace jsd
