// Batch assembly, CPU: gather samples by index and normalise per channel.
#include "kernels_cpu.h"

namespace rs {

template <class S> static void gather(float* out, const S* data, const int64_t* idx, int B, int C, size_t HW,
                                      float scale, const float* mean, const float* inv_std) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c) {
      const S* src = data + (size_t(idx[b]) * C + c) * HW;
      float* dst = out + (size_t(b) * C + c) * HW;
      for (size_t i = 0; i < HW; ++i) dst[i] = normalize_pixel(float(src[i]), scale, mean[c], inv_std[c]);
    }
}

void gather_normalize_cpu(float* out, const uint8_t* data, const int64_t* idx, int B, int C, size_t HW,
                          const float* mean, const float* inv_std) {
  gather(out, data, idx, B, C, HW, 1.f / 255.f, mean, inv_std);
}
void gather_normalize_cpu(float* out, const float* data, const int64_t* idx, int B, int C, size_t HW, const float* mean,
                          const float* inv_std) {
  gather(out, data, idx, B, C, HW, 1.f, mean, inv_std);
}

template <class S> static void gather_aug(float* out, const S* data, const int64_t* idx, int B, int C, int H, int W,
                                          float scale, const float* mean, const float* inv_std, int pad, bool flip,
                                          uint64_t key) {
  const size_t HW = size_t(H) * W;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const AugmentDraw a = augment_draw(key, uint64_t(idx[b]), pad, flip);
    for (int c = 0; c < C; ++c) {
      const S* src = data + (size_t(idx[b]) * C + c) * HW;
      float* dst = out + (size_t(b) * C + c) * HW;
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const int o = augment_source(y, x, H, W, a);
          dst[y * W + x] = normalize_pixel(o < 0 ? 0.f : float(src[o]), scale, mean[c], inv_std[c]);
        }
    }
  }
}

void gather_augment_cpu(float* out, const uint8_t* data, const int64_t* idx, int B, int C, int H, int W,
                        const float* mean, const float* inv_std, int pad, bool flip, uint64_t key) {
  gather_aug(out, data, idx, B, C, H, W, 1.f / 255.f, mean, inv_std, pad, flip, key);
}
void gather_augment_cpu(float* out, const float* data, const int64_t* idx, int B, int C, int H, int W,
                        const float* mean, const float* inv_std, int pad, bool flip, uint64_t key) {
  gather_aug(out, data, idx, B, C, H, W, 1.f, mean, inv_std, pad, flip, key);
}

}  // namespace rs
