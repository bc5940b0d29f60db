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
  RS_LAUNCH(normalize_kernel<uint8_t>, grid_for(n), kThreads, st, out, in, C, HW, 1.f / 255.f, mean, inv_std, n);
}

void normalize_gpu(float* out, const float* in, int B, int C, size_t HW, const float* mean, const float* inv_std,
                   cudaStream_t st) {
  const size_t n = size_t(B) * C * HW;
  RS_LAUNCH(normalize_kernel<float>, grid_for(n), kThreads, st, out, in, C, HW, 1.f, mean, inv_std, n);
}

// The same with augmentation: sample b (dataset index idx[b]) shifted and
// mirrored as hd_math.h's augment_draw says; the padding is pixel value 0.
template <class S> __global__ void augment_kernel(float* out, const S* in, const int64_t* idx, int C, int H, int W,
                                                  float scale, const float* mean, const float* inv_std, int pad,
                                                  bool flip, uint64_t key, size_t n) {
  const size_t HW = size_t(H) * W;
  RS_GRID_STRIDE(i, n) {
    const size_t plane = i / HW, b = plane / C;
    const int c = int(plane % C), y = int(i % HW) / W, x = int(i % HW) % W;
    const int o = augment_source(y, x, H, W, augment_draw(key, uint64_t(idx[b]), pad, flip));
    out[i] = normalize_pixel(o < 0 ? 0.f : float(in[plane * HW + size_t(o)]), scale, mean[c], inv_std[c]);
  }
}

void augment_normalize_gpu(float* out, const uint8_t* in, const int64_t* idx, int B, int C, int H, int W,
                           const float* mean, const float* inv_std, int pad, bool flip, uint64_t key, cudaStream_t st) {
  const size_t n = size_t(B) * C * H * W;
  RS_LAUNCH(augment_kernel<uint8_t>, grid_for(n), kThreads, st, out, in, idx, C, H, W, 1.f / 255.f, mean, inv_std, pad,
            flip, key, n);
}

void augment_normalize_gpu(float* out, const float* in, const int64_t* idx, int B, int C, int H, int W,
                           const float* mean, const float* inv_std, int pad, bool flip, uint64_t key, cudaStream_t st) {
  const size_t n = size_t(B) * C * H * W;
  RS_LAUNCH(augment_kernel<float>, grid_for(n), kThreads, st, out, in, idx, C, H, W, 1.f, mean, inv_std, pad, flip, key,
            n);
}

}  // namespace rs
