// Max-pool, CPU. Parallel over (sample, channel) planes; windows may overlap
// (stride < K), so backward accumulates within one plane only.
#include <algorithm>
#include <limits>

#include "kernels_cpu.h"

namespace rs {

template <class T> void maxpool_forward_cpu(T* out, int32_t* argmax, const T* in, const PoolShape& s) {
  const long planes = long(s.B) * s.C;
#pragma omp parallel for schedule(static)
  for (long pl = 0; pl < planes; ++pl) {
    const T* src = in + size_t(pl) * s.H * s.W;
    T* dst = out + size_t(pl) * s.OH * s.OW;
    int32_t* am = argmax + size_t(pl) * s.OH * s.OW;
    if (s.K == 2 && s.stride == 2 && s.pad == 0) {  // the common case, without bounds checks
      for (int oh = 0; oh < s.OH; ++oh)
        for (int ow = 0; ow < s.OW; ++ow) {
          const int i0 = 2 * oh * s.W + 2 * ow, cand[4] = {i0, i0 + 1, i0 + s.W, i0 + s.W + 1};
          int where = i0;
          for (int k = 1; k < 4; ++k)
            if (src[cand[k]] > src[where]) where = cand[k];
          dst[oh * s.OW + ow] = src[where];
          am[oh * s.OW + ow] = where;
        }
      continue;
    }
    for (int oh = 0; oh < s.OH; ++oh)
      for (int ow = 0; ow < s.OW; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        int32_t where = -1;
        const int h0 = oh * s.stride - s.pad, w0 = ow * s.stride - s.pad;
        for (int ih = std::max(h0, 0); ih < std::min(h0 + s.K, s.H); ++ih)
          for (int iw = std::max(w0, 0); iw < std::min(w0 + s.K, s.W); ++iw) {
            const T v = src[ih * s.W + iw];
            if (where < 0 || v > best) best = v, where = ih * s.W + iw;
          }
        dst[oh * s.OW + ow] = best;
        am[oh * s.OW + ow] = where;
      }
  }
}

template <class T> void maxpool_backward_cpu(T* din, const T* dout, const int32_t* argmax, const PoolShape& s) {
  const long planes = long(s.B) * s.C;
#pragma omp parallel for schedule(static)
  for (long pl = 0; pl < planes; ++pl) {
    T* dst = din + size_t(pl) * s.H * s.W;
    std::fill_n(dst, size_t(s.H) * s.W, T(0));
    const T* src = dout + size_t(pl) * s.OH * s.OW;
    const int32_t* am = argmax + size_t(pl) * s.OH * s.OW;
    for (int i = 0; i < s.OH * s.OW; ++i) dst[am[i]] += src[i];
  }
}

template void maxpool_forward_cpu<float>(float*, int32_t*, const float*, const PoolShape&);
template void maxpool_forward_cpu<double>(double*, int32_t*, const double*, const PoolShape&);
template void maxpool_backward_cpu<float>(float*, const float*, const int32_t*, const PoolShape&);
template void maxpool_backward_cpu<double>(double*, const double*, const int32_t*, const PoolShape&);

}  // namespace rs
