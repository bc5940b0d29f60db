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

}  // namespace rs
