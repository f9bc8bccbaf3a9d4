// The node's link spawner (issue 20: a link's cost is paid once). A small
// process the listener starts once (`jsd-client --spawner`, fd 3 a
// SOCK_SEQPACKET socketpair to the listener) that has done its exec and its
// start-up already: for each request it forks a link process that runs
// jsd-client's or jsd-queue-server's main() with the argv given, and the
// descriptors passed with the request (SCM_RIGHTS) as 3, 4, ...
//
// Its children are the listener's (clone with CLONE_PARENT): the listener
// watches and reaps them as if it had started them, through their pidfds,
// and each shows its seed name in ps (its argv, written over the spawner's
// own: the listener starts the spawner with room for it).
//
// Wire (one datagram each way): request = kind ('c' client, 's' server),
// then argv as NUL-terminated strings, with the descriptors attached;
// answer = int32 pid, or -errno.
#pragma once

#include <string>
#include <vector>

namespace jsd {

enum class LinkKind : char { client = 'c', server = 's' };

struct SpawnRequest {
  LinkKind kind = LinkKind::client;
  std::vector<std::string> argv;
};

std::string encode_spawn_request(const SpawnRequest& r);
bool decode_spawn_request(const char* p, size_t n, SpawnRequest& r, std::string& err);

// The most descriptors one request carries, and the room the listener gives
// the spawner's argv (a child's argv longer than that is cut in ps only).
constexpr size_t kSpawnMaxFds = 4;
constexpr size_t kSpawnTitleRoom = 4096;

// In a child: makes fds[i] descriptor first + i, /dev/null descriptor 0
// (descriptors 1 and 2 stay), and closes every other one from first up.
// 0, or the errno of the dup that failed.
int place_descriptors(const std::vector<int>& fds, int first = 3);

// jsd-client --spawner TITLE-ROOM: argv[0] is its name in ps.
int run_link_spawner(int argc, char** argv);

}  // namespace jsd
