// Error checks for CUDA, cuBLAS, cuDNN and NCCL calls: evaluate the call once;
// on failure throw std::runtime_error with the call text, the library's own
// error string, file, line and MPI rank. *_NOTHROW variants (destructors)
// print the same line to stderr instead.
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

[[noreturn]] void gpu_fail(const char* lib, const char* call, const std::string& what, const char* file, int line);
void gpu_warn(const char* lib, const char* call, const std::string& what, const char* file, int line) noexcept;
const char* cublas_error_string(cublasStatus_t s);

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
// Kernel launches: check the launch itself (configuration errors).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#include <nccl.h>
#define NCCL_CHECK(call) RS_GPU_CHECK_("NCCL", rs_status_ == ncclSuccess, ncclGetErrorString(rs_status_), call)
#define NCCL_CHECK_NOTHROW(call) RS_GPU_WARN_("NCCL", rs_status_ == ncclSuccess, ncclGetErrorString(rs_status_), call)
