#pragma once

#include "data/dataset.h"
#include "mpi/comm.h"

namespace rs {

// Rank 0 loads and validates the data (errors reach every rank as UserError)
// and broadcasts it; other ranks never open the files.
Data load_and_bcast_data(const Comm& comm, const DataConfig& cfg, uint64_t seed);

}  // namespace rs
