// The command lines of the two link processes, jsd-client (QueueClient_REMOTE)
// and jsd-queue-server (QueueServer_PEER): their programs' main(), and what a
// child of the node's link spawner (link_spawner.h) runs, with the same argv.
#pragma once

namespace jsd {

int queue_client_main(int argc, char** argv);
int queue_server_main(int argc, char** argv);

}  // namespace jsd
