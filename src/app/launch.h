// What every command does at launch, per rank: check how it was launched,
// threads, the backend and its device, and the first line of output.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/device.h"
#include "config/config.h"
#include "mpi/comm.h"
#include "train/stop.h"

namespace rs {

// Before MPI_Init, from the environment alone: srun without --mpi=pmix starts
// N tasks with no PMI to join them (Open MPI then fails inside MPI_Init with a
// page of text, other MPIs run N copies of the job). Returns what is wrong
// ("" if nothing), for one line and exit status 2.
std::string launch_problem();

// OpenMP threads per rank: OMP_NUM_THREADS if set, else cores / ranks on the
// node (collective over `comm`); `why` says which, for the first line.
int choose_threads(const Comm& comm, std::string* why);

// Where the ranks run: nodes, and every rank's device binding.
struct Placement {
  std::string why;       // how this rank's device was chosen
  std::string bindings;  // on rank 0: one line per rank "host rank R local L cpu|cuda:I (PCI id)"
  int nodes = 1;
  std::string device;  // this rank's backend, "cpu" or "cuda:I"
};

// This rank's device among the ranks of `placement` (see make_backend), from
// what each rank sees: `visible`, the PCI ids of its CUDA devices (injected by
// tests). Fills `where`; collective, a bad binding is a UserError on every rank.
DeviceChoice place_rank(const std::string& requested, bool compiled, const std::vector<std::string>& visible,
                        const Comm& placement, Placement* where);

// The backend this rank computes on. The device is chosen by the rank's
// place on its node among the ranks of `placement` (the whole job, also in a
// sweep, so groups on one node take different GPUs). Collective over
// `placement`; a bad binding on any rank is a UserError on every rank.
std::unique_ptr<Backend> make_backend(const TrainConfig& t, const Comm& placement, Placement* where);

// The first line of a command's output (rank 0): Slurm job (id, restart),
// nodes, ranks x threads, device, deadline; with verbose, every rank's binding.
void print_launch(const std::string& command, const Comm& world, const Placement& where, int threads,
                  const std::string& threads_why, const Deadline& deadline, bool verbose);

// --trace FILE: every rank records spans from now on (io/trace.h), named
// host:rank; rank 0 checks first that FILE can be written where it goes
// (collective: a UserError on every rank).
void start_trace(const std::string& path, const Comm& world);
// Every rank's spans to rank 0, which writes FILE whole (Chrome trace-event
// JSON, timestamps from the earliest rank's start). Collective.
void write_trace(const std::string& path, const Comm& world);

}  // namespace rs
