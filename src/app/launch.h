// What every command does at launch, per rank: threads and the backend.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "mpi/comm.h"

namespace rs {

// OpenMP threads per rank: OMP_NUM_THREADS if set, else cores / ranks on the
// node (collective over `comm`); `why` says which, for the first line.
int choose_threads(const Comm& comm, std::string* why);

// The backend this rank computes on. The device is chosen by the rank's
// place on its node among the ranks of `placement` (the whole job, also in a
// sweep, so groups on one node take different GPUs); `why` for the log.
std::unique_ptr<Backend> make_backend(const TrainConfig& t, const Comm& placement, std::string* why);

}  // namespace rs
