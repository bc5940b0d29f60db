// Provenance: the attributes every file we write carries at its root
// (version, git sha, build, world size, threads per rank, libraries, command,
// Slurm job id and restart count, host, every rank's device binding, time written).
#pragma once

#include <hdf5.h>

#include <string>

namespace rs {

struct Provenance {
  int world_size = 1;
  int threads = 1;
  std::string command;
  std::string device_binding;  // one line per rank: host, rank, local rank, device (PCI bus id)
};

void write_provenance(hid_t file, const Provenance& p);

std::string library_versions();  // one line: MPI, HDF5, OpenBLAS, zlib

}  // namespace rs
