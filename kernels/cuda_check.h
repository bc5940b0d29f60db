// Error checks for CUDA, cuBLAS, cuDNN and NCCL calls: evaluate the call once;
// on failure throw std::runtime_error with the call text, the library's own
// error string, file, line and MPI rank. *_NOTHROW variants (destructors)
// print the same line to stderr instead.
//
// An error that leaves the device context unusable (an illegal address, a
// kernel that faulted: the runtime says the process must be relaunched) is
// never thrown: a sweep would record the trial failed and every later trial
// on that rank would fail at once, and the rank's group partners would wait
// in NCCL forever. gpu_fail hands it to gpu_fatal_handler() instead, which
// the CUDA backend sets to print the line and MPI_Abort the job.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

namespace rs {

// The MPI rank named in GPU error messages (set by the CUDA backend).
inline int& gpu_rank() {
  static int rank = -1;
  return rank;
}

// Called with the message of a fatal error; must not return (if it does,
// std::abort follows). Default: print to stderr.
using GpuFatalHandler = void (*)(const std::string& message);
GpuFatalHandler& gpu_fatal_handler();
// True for the errors after which "any further CUDA work will return the same error".
bool cuda_error_is_fatal(cudaError_t e);

[[noreturn]] void gpu_fail(const char* lib, const char* call, const std::string& what, const char* file, int line);
void gpu_warn(const char* lib, const char* call, const std::string& what, const char* file, int line) noexcept;
const char* cublas_error_string(cublasStatus_t s);

// After a kernel launch: the launch's own error (configuration, no kernel
// image) and, with RANKSWEEP_CUDA_SYNC=1 in the environment, the kernel's
// execution (synchronise the stream), so that a fault names its kernel.
void check_launch(const char* kernel, cudaStream_t st);

}  // namespace rs

#define RS_GPU_CHECK_(lib, ok, errstr, call)                             \
  do {                                                                   \
    const auto rs_status_ = (call);                                      \
    if (!(ok)) ::rs::gpu_fail(lib, #call, (errstr), __FILE__, __LINE__); \
  } while (0)
#define RS_GPU_WARN_(lib, ok, errstr, call)                              \
  do {                                                                   \
    const auto rs_status_ = (call);                                      \
    if (!(ok)) ::rs::gpu_warn(lib, #call, (errstr), __FILE__, __LINE__); \
  } while (0)

#define CUDA_CHECK(call) RS_GPU_CHECK_("CUDA", rs_status_ == cudaSuccess, cudaGetErrorString(rs_status_), call)
#define CUDA_CHECK_NOTHROW(call) RS_GPU_WARN_("CUDA", rs_status_ == cudaSuccess, cudaGetErrorString(rs_status_), call)
#define CUBLAS_CHECK(call) \
  RS_GPU_CHECK_("cuBLAS", rs_status_ == CUBLAS_STATUS_SUCCESS, ::rs::cublas_error_string(rs_status_), call)
#define CUBLAS_CHECK_NOTHROW(call) \
  RS_GPU_WARN_("cuBLAS", rs_status_ == CUBLAS_STATUS_SUCCESS, ::rs::cublas_error_string(rs_status_), call)
#define CUDNN_CHECK(call) \
  RS_GPU_CHECK_("cuDNN", rs_status_ == CUDNN_STATUS_SUCCESS, cudnnGetErrorString(rs_status_), call)
#define CUDNN_CHECK_NOTHROW(call) \
  RS_GPU_WARN_("cuDNN", rs_status_ == CUDNN_STATUS_SUCCESS, cudnnGetErrorString(rs_status_), call)

#include <nccl.h>
#define NCCL_CHECK(call) RS_GPU_CHECK_("NCCL", rs_status_ == ncclSuccess, ncclGetErrorString(rs_status_), call)
#define NCCL_CHECK_NOTHROW(call) RS_GPU_WARN_("NCCL", rs_status_ == ncclSuccess, ncclGetErrorString(rs_status_), call)
