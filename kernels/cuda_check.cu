// The failure paths of the CUDA_CHECK family (cuda_check.h).
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda_check.h"

namespace rs {
namespace {

void print_fatal(const std::string& message) { std::fprintf(stderr, "ranksweep: %s\n", message.c_str()); }

}  // namespace

GpuFatalHandler& gpu_fatal_handler() {
  static GpuFatalHandler h = print_fatal;
  return h;
}

bool cuda_error_is_fatal(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

void gpu_fail(const char* lib, const char* call, const std::string& what, const char* file, int line) {
  const std::string where = std::string(lib) + " error: " + call + ": " + what + " at " + file + ":" +
                            std::to_string(line) + " (rank " + std::to_string(gpu_rank()) + ")";
  // A fatal error sticks: every later call returns it, whichever library
  // failed first. Any other error is cleared here, so that it is not taken
  // for the next kernel launch's error.
  const cudaError_t last = cudaGetLastError();
  if (cuda_error_is_fatal(last)) {
    gpu_fatal_handler()(where + "; the GPU context is lost (" + cudaGetErrorString(last) + ")");
    std::abort();
  }
  throw std::runtime_error(where);
}

void gpu_warn(const char* lib, const char* call, const std::string& what, const char* file, int line) noexcept {
  std::fprintf(stderr, "ranksweep: rank %d: %s error: %s: %s at %s:%d\n", gpu_rank(), lib, call, what.c_str(), file,
               line);
}

const char* cublas_error_string(cublasStatus_t s) { return cublasGetStatusString(s); }

void check_launch(const char* kernel, cudaStream_t st) {
  static const bool sync = [] {
    const char* e = std::getenv("RANKSWEEP_CUDA_SYNC");
    return e && *e && std::string(e) != "0";
  }();
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && sync) e = cudaStreamSynchronize(st);
  if (e != cudaSuccess) gpu_fail("CUDA", kernel, cudaGetErrorString(e), __FILE__, __LINE__);  // fatal ones stick
}

}  // namespace rs
