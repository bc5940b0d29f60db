// The failure paths of the CUDA_CHECK family (cuda_check.h).
#include <cstdio>
#include <stdexcept>
#include <string>

#include "cuda_check.h"

namespace rs {

void gpu_fail(const char* lib, const char* call, const std::string& what, const char* file, int line) {
  throw std::runtime_error(std::string(lib) + " error: " + call + ": " + what + " at " + file + ":" +
                           std::to_string(line) + " (rank " + std::to_string(gpu_rank()) + ")");
}

void gpu_warn(const char* lib, const char* call, const std::string& what, const char* file, int line) noexcept {
  std::fprintf(stderr, "ranksweep: rank %d: %s error: %s: %s at %s:%d\n", gpu_rank(), lib, call, what.c_str(), file,
               line);
}

const char* cublas_error_string(cublasStatus_t s) { return cublasGetStatusString(s); }

}  // namespace rs
