// One rank group's side of a sweep: its leader asks the coordinator for a
// job, the group trains it data-parallel over its own communicator (on the
// group's one backend and gradient communicator, reused by every job),
// the leader reports rungs and the result, and so on until the coordinator
// says the sweep is done.
#pragma once

#include <mpi.h>

#include <functional>
#include <string>

#include "backend/backend.h"
#include "data/dataset.h"
#include "mpi/allreduce.h"
#include "mpi/comm.h"
#include "sweep/protocol.h"
#include "sweep/space.h"

namespace rs {

struct GroupSetup {
  const SweepConfig& sweep;
  const std::string& base_text;  // the sweep's config (file + --set)
  const std::string& origin;     // the config file, for messages
  const std::string& dir;        // the sweep's output directory
  const Data& data;
  int64_t group = 0;                 // this group's index
  int threads = 1;                   // per rank, for the trials' provenance
  std::string device_binding;        // every rank's device, for the trials' provenance
  std::function<bool()> local_stop;  // this rank must stop (a signal, the deadline)
};

// Runs jobs until the coordinator (world rank 0, over `ch`) says done. A job
// stops early when any rank of the group must stop, or its leader got a Stop
// from the coordinator: it checkpoints at that step and reports itself
// interrupted.
void run_group(const GroupSetup& s, const Comm& group, Backend& be, GradComm& grads, Channels ch);

}  // namespace rs
