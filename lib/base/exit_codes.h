// Exit statuses of the jsd programs, named once for the code and for the
// EXIT STATUS sections of the man pages, which say which program uses which.
// A number means something per program (1 is a daemon's start-up error but
// jsd-ping's "no reply"), so each meaning has its own name.
//
// No program exits with 2: a wrong command line is a start-up error (1) for
// the daemons and a jsd failure (255) for the tools, as documented.
#pragma once

namespace jsd {

constexpr int kExitOk = 0;

// jsd-listener, jsd-client, jsd-queue-server: a bad configuration or command
// line, or a failure to start (also a failed key action or --check-config).
constexpr int kExitStartupError = 1;

// jsd-ping: no reply came back.
constexpr int kExitNoReply = 1;

// jsd-ping, jsd-submit, jsd-listener --status: jsd itself failed (no
// listener, a refused link, no answer in time, a wrong command line...).
constexpr int kExitJsdFailure = 255;

// jsd-submit: it cannot know whether the job ran: it gave up on a
// submission that may have reached its node (the request could not be
// withdrawn, the job had started, or the local listener was lost), or the
// job's record says lost or unknown (job_wire.h); --status ID tells more.
// 255, by contrast, promises that the job did not run and will not.
constexpr int kExitOutcomeUnknown = 254;

// The status of a job, as jsd-submit exits with it: the job's own exit code
// (0-255), or one of these.
constexpr int kExitJobNotStarted = 127;  // its command could not start
// Its node cannot know how it ended (its supervisor died and the job was
// not the listener's child): "cannot know", like jsd-submit's own 254.
constexpr int kExitJobLost = kExitOutcomeUnknown;
constexpr int kExitSignalBase = 128;  // 128+N: killed by signal N

// 128+N: a job killed by signal N, or jsd-submit itself interrupted by it.
constexpr int exit_for_signal(int sig) { return kExitSignalBase + sig; }

}  // namespace jsd
