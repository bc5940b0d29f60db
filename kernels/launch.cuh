// Kernel launches, shared by the .cu files: every launch goes through
// RS_LAUNCH, so nvcc and the host emulator (tests/emu) compile the same
// source, an empty grid is never launched (CUDA rejects it as an invalid
// configuration), and every launch is checked with the kernel's name.
#pragma once

#include <algorithm>
#include <cstddef>

#include "cuda_check.h"

namespace rs {

constexpr int kThreads = 256;

// The largest grid a grid-stride launcher uses; the loops cover the rest.
// Tests shrink it so that the loops wrap.
inline unsigned& grid_limit() {
  static unsigned g = 65535u * 8u;
  return g;
}
inline unsigned grid_for(size_t n) { return unsigned(std::min<size_t>((n + kThreads - 1) / kThreads, grid_limit())); }

#define RS_GRID_STRIDE(i, n) \
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += size_t(blockDim.x) * gridDim.x)

// kernel<<<grid, block, 0, st>>>(args...), converted to the kernel's
// parameter types, then check_launch (cuda_check.h).
template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t st, const A&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "a kernel launch needs one argument per parameter");
  if (size_t(grid.x) * grid.y * grid.z == 0) return;  // nothing to compute
#ifdef RS_CUDA_EMU
  emu::launch(name, grid, block, [&] { kernel(static_cast<P>(args)...); }, {emu::pointer_arg(args)...});
#else
  // clang-format off
  kernel<<<grid, block, 0, st>>>(static_cast<P>(args)...);
  // clang-format on
#endif
  check_launch(name, st);
}

}  // namespace rs

#define RS_LAUNCH(kernel, grid, block, stream, ...) ::rs::launch(#kernel, kernel, grid, block, stream, __VA_ARGS__)
