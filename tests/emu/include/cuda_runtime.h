// The CUDA runtime as the host emulator provides it (tests/emu/emu.cpp):
// enough of the language and the runtime API for kernels/*.cu to compile as
// C++ and run on the CPU, each block's threads as cooperative fibers.
//   - __syncthreads() is a real barrier; every thread of the block must reach
//     it (a thread that returned while others wait is an error);
//   - threadIdx, blockIdx, blockDim, gridDim are set per fiber;
//   - __shared__ variables are static storage reset to a NaN pattern (0xff
//     bytes) before each block, so reading what no thread wrote shows;
//   - device memory comes from cudaMalloc (host memory filled with 0xff,
//     tracked); a kernel argument that points anywhere else is an error;
//   - launches check the configuration as CUDA does (block size, grid size);
//   - each launch runs twice from the same memory, threads scheduled in
//     ascending and then descending order within each block; if the results
//     differ in any byte, the kernel depends on thread order (a missing
//     barrier, a race) and the launch fails.
// Blocks run one after another, so atomics are plain read-modify-writes.
// Streams, events, pinned memory, cuDNN and NCCL are not emulated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static __attribute__((section("rs_emu_shared")))

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
void __syncthreads();

// The error codes the project names, with the real runtime's values.
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorECCUncorrectable = 214,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchTimeout = 702,
  cudaErrorAssert = 710,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorInvalidPc = 718,
  cudaErrorLaunchFailure = 719,
};
using cudaStream_t = struct CUstream_st*;

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaStreamSynchronize(cudaStream_t st);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);

inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
template <class T> T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}

namespace emu {

// A kernel argument as the launch checks it: its address if it is a pointer.
struct Arg {
  const void* ptr;
  bool is_pointer;
};
template <class T> Arg pointer_arg(const T& a) {
  if constexpr (std::is_pointer_v<T>)
    return {static_cast<const void*>(a), true};
  else
    return {nullptr, false};
}
// Run body for every thread of the grid (see above); sets the last error.
void launch(const char* name, dim3 grid, dim3 block, const std::function<void()>& body,
            std::initializer_list<Arg> args);

// Test controls: the next launch fails with `e` (a device fault), and the
// bytes of live device allocations (to check that nothing leaked).
void fail_next_launch(cudaError_t e);
size_t live_device_bytes();
void reset();  // clear a sticky error (the emulated device is "relaunched")

}  // namespace emu
