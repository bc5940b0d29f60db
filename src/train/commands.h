// The program's subcommands, callable from main and from tests.
#pragma once

#include <string>
#include <vector>

#include "dist/comm.h"

namespace rs {

struct TrainOptions {
  std::string config;               // CONFIG.toml (empty with --resume)
  std::vector<std::string> sets;    // --set key=value
  std::string out;                  // --out DIR
  std::string resume;               // --resume DIR
  std::string device;               // --device auto|cpu|cuda (empty: config)
  int64_t stop_after = 0;           // --stop-after N: at most N epochs now (0: all)
  bool verbose = false;             // also print per-phase times each epoch
  std::string command;              // the command line, for provenance
};

// Returns the exit status. Throws UserError for bad input.
int train_command(const TrainOptions& opt, const Comm& comm);
int info_command(const Comm& comm);

// OpenMP threads per rank: OMP_NUM_THREADS if set, else cores / ranks on the node.
int choose_threads(const Comm& comm, std::string* why);

std::string format_seconds(double s);

}  // namespace rs
