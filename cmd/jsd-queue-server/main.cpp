// jsd-queue-server (QueueServer_<peer>): started by jsd-listener (or forked,
// already loaded, by its link spawner). See jsd-queue-server(8).
#include "link_main.h"

int main(int argc, char** argv) { return jsd::queue_server_main(argc, argv); }
