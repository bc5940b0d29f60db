// Batch conversion on the GPU: raw samples uploaded as they are stored
// (uint8 or float) become normalised floats (hd_math.h's normalize_pixel).
#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {

template <class S> __global__ void normalize_kernel(float* out, const S* in, int C, size_t HW, float scale,
                                                    const float* mean, const float* inv_std, size_t n) {
  RS_GRID_STRIDE(i, n) {
    const int c = int((i / HW) % C);
    out[i] = normalize_pixel(float(in[i]), scale, mean[c], inv_std[c]);
  }
}

void normalize_gpu(float* out, const uint8_t* in, int B, int C, size_t HW, const float* mean, const float* inv_std,
                   cudaStream_t st) {
  const size_t n = size_t(B) * C * HW;
  if (n == 0) return;
  normalize_kernel<<<grid_for(n), kThreads, 0, st>>>(out, in, C, HW, 1.f / 255.f, mean, inv_std, n);
  CUDA_CHECK_LAUNCH();
}

void normalize_gpu(float* out, const float* in, int B, int C, size_t HW, const float* mean, const float* inv_std,
                   cudaStream_t st) {
  const size_t n = size_t(B) * C * HW;
  if (n == 0) return;
  normalize_kernel<<<grid_for(n), kThreads, 0, st>>>(out, in, C, HW, 1.f, mean, inv_std, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace rs
