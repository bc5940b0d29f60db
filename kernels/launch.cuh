// Launch helpers shared by the .cu files: grid-stride loops over n elements.
#pragma once

#include <algorithm>
#include <cstddef>

#include "cuda_check.h"

namespace rs {

constexpr int kThreads = 256;

inline unsigned grid_for(size_t n) { return unsigned(std::min<size_t>((n + kThreads - 1) / kThreads, 65535u * 8u)); }

#define RS_GRID_STRIDE(i, n) \
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += size_t(blockDim.x) * gridDim.x)

}  // namespace rs
