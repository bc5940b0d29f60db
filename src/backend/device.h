// Device choice, kept free of CUDA and MPI so it runs (and is tested) everywhere.
#pragma once

#include <string>
#include <vector>

namespace rs {

struct DeviceChoice {
  bool cuda = false;  // false: the CPU backend
  int device = -1;    // CUDA device index among the ones this rank sees
  std::string pci;    // its PCI bus id
  std::string why;    // for the first line of output
};

// requested: auto | cpu | cuda. compiled: this build has the CUDA backend.
// node_devices[i]: the PCI bus ids of the devices local rank i of this node
// sees, in CUDA's order (what CUDA_VISIBLE_DEVICES, Slurm's --gpus-per-task
// or a site's binding left it). A rank that sees one device uses it; a rank
// that sees several takes the one at its local rank (ranks are placed on the
// whole job's node, not on their sweep group). Two ranks of a node on one
// device, or more ranks than devices, is an error naming both counts: no
// silent sharing, no CPU fallback.
DeviceChoice choose_device(const std::string& requested, bool compiled,
                           const std::vector<std::vector<std::string>>& node_devices, int local_rank);

// PCI bus ids of the devices CUDA can see (none without a CUDA build, driver or device).
std::vector<std::string> visible_cuda_devices();

// One line per library and device, for `ranksweep info` (empty without CUDA).
std::string cuda_info();

}  // namespace rs
