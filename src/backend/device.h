// Device choice, kept free of CUDA so it runs (and is tested) everywhere.
#pragma once

#include <string>

namespace rs {

struct DeviceChoice {
  bool cuda = false;  // false: the CPU backend
  int device = -1;    // CUDA device index among the visible ones
  std::string why;    // for the first line of output
};

// requested: auto | cpu | cuda. compiled: this build has the CUDA backend.
// visible: devices CUDA reports (0 when there is no driver or no device).
// Ranks on a node take devices by local rank; more ranks than devices on a
// node is an error naming both counts (no silent sharing, no CPU fallback).
DeviceChoice choose_device(const std::string& requested, bool compiled, int visible, int local_rank, int local_size);

// Devices CUDA can see (0 without a CUDA build, driver or device).
int visible_cuda_devices();

// One line per library and device, for `ranksweep info` (empty without CUDA).
std::string cuda_info();

}  // namespace rs
