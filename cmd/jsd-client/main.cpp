// jsd-client (QueueClient_<remote>): started by jsd-listener (or forked,
// already loaded, by its link spawner). `jsd-client --spawner` is that
// spawner (link_spawner.h). See jsd-client(8).
#include <cstring>

#include "link_main.h"
#include "link_spawner.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--spawner") == 0) return jsd::run_link_spawner(argc, argv);
  return jsd::queue_client_main(argc, argv);
}
