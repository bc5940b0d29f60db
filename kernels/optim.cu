// Optimizer updates over the flat parameter buffer on the GPU (hd_math.h).
#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {

__global__ void sgd_kernel(float* p, float* v, const float* g, size_t n, SgdParams o) {
  float unused = 0.f;
  RS_GRID_STRIDE(i, n) sgd_update(p + i, v ? v + i : &unused, g[i], o);
}

__global__ void adam_kernel(float* p, float* m, float* v, const float* g, size_t n, AdamParams o) {
  RS_GRID_STRIDE(i, n) adam_update(p + i, m + i, v + i, g[i], o);
}

void sgd_update_gpu(float* p, float* v, const float* g, size_t n, const SgdParams& o, cudaStream_t st) {
  RS_LAUNCH(sgd_kernel, grid_for(n), kThreads, st, p, v, g, n, o);
}

void adam_update_gpu(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o, cudaStream_t st) {
  RS_LAUNCH(adam_kernel, grid_for(n), kThreads, st, p, m, v, g, n, o);
}

}  // namespace rs
