// Max-pool, CPU. Parallel over (sample, channel) planes; windows may overlap
// (stride < K), so backward accumulates within one plane only.
#include <algorithm>
#include <limits>
#include <type_traits>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels_cpu.h"

namespace rs {
namespace {

// 2 x 2 windows at stride 2: no overlap, no padding (the common case).
bool windows_2x2(const PoolShape& s) { return s.K == 2 && s.stride == 2 && s.pad == 0; }

#if defined(__AVX512F__)
// 16 outputs' windows from output o of a row that starts at input offset
// `row` in its plane: their first inputs (row + 2 (o + lane)), and the masks
// of their 2n inputs in each of the two vectors of a row (n outputs, <= 16).
struct Windows {
  __m512i at;
  __mmask16 lo, hi, keep;
  Windows(int32_t row, int o, int n)
      : at(_mm512_add_epi32(_mm512_set1_epi32(row + 2 * o),
                            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30))),
        lo(__mmask16(n >= 8 ? 0xffff : (1u << 2 * n) - 1)),
        hi(__mmask16(n > 8 ? (1u << (2 * n - 16)) - 1 : 0)),
        keep(__mmask16((1u << n) - 1)) {}
  __m512i plus(int offset) const { return _mm512_add_epi32(at, _mm512_set1_epi32(offset)); }
};

// A 2 x 2, stride-2 window's maximum and its position for 16 outputs of one
// row at a time (the last block masked): the rows' even and odd values
// deinterleaved from two vectors each, then three compare-and-blends in the
// scalar order (x00, x01, x10, x11: the first maximum wins; NaN never does).
void max2x2_row(float* out, int32_t* argmax, const float* a, int W, int OW, int32_t row) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const float* b = a + W;
  for (int o = 0; o < OW; o += 16) {
    const Windows win(row, o, std::min(16, OW - o));
    const __m512 a0 = _mm512_maskz_loadu_ps(win.lo, a + 2 * o), a1 = _mm512_maskz_loadu_ps(win.hi, a + 2 * o + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(win.lo, b + 2 * o), b1 = _mm512_maskz_loadu_ps(win.hi, b + 2 * o + 16);
    __m512 best = _mm512_permutex2var_ps(a0, even, a1);
    __m512i where = win.at;
    const auto take = [&](__m512 v, int offset) {
      const __mmask16 m = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
      best = _mm512_mask_blend_ps(m, best, v);
      where = _mm512_mask_blend_epi32(m, where, win.plus(offset));
    };
    take(_mm512_permutex2var_ps(a0, odd, a1), 1);
    take(_mm512_permutex2var_ps(b0, even, b1), W);
    take(_mm512_permutex2var_ps(b0, odd, b1), W + 1);
    _mm512_mask_storeu_ps(out + o, win.keep, best);
    _mm512_mask_storeu_epi32(argmax + o, win.keep, where);
  }
}

// Backward of max2x2_row over its two input rows, written whole: each
// output's gradient goes to the one of its four inputs its argmax names, the
// others get zero (no separate fill, no scatter).
void max2x2_row_backward(float* din, const float* dout, const int32_t* argmax, int W, int OW, int32_t row) {
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
  for (int o = 0; o < OW; o += 16) {
    const Windows win(row, o, std::min(16, OW - o));
    const __m512 g = _mm512_maskz_loadu_ps(win.keep, dout + o);
    const __m512i where = _mm512_maskz_loadu_epi32(win.keep, argmax + o);
    const auto to = [&](int offset) {  // g where the winner is at this offset of the window, else 0
      return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(where, win.plus(offset)), g);
    };
    const auto put = [&](float* r, __m512 even, __m512 odd) {  // interleave: columns 2o, 2o + 1, ...
      _mm512_mask_storeu_ps(r + 2 * o, win.lo, _mm512_permutex2var_ps(even, lo_idx, odd));
      _mm512_mask_storeu_ps(r + 2 * o + 16, win.hi, _mm512_permutex2var_ps(even, hi_idx, odd));
    };
    put(din, to(0), to(1));
    put(din + W, to(W), to(W + 1));
  }
}
#endif

}  // namespace

template <class T> void maxpool_forward_cpu(T* out, int32_t* argmax, const T* in, const PoolShape& s) {
  const long planes = long(s.B) * s.C;
  const bool two = windows_2x2(s);
#pragma omp parallel for schedule(static)
  for (long pl = 0; pl < planes; ++pl) {
    const T* src = in + size_t(pl) * s.H * s.W;
    T* dst = out + size_t(pl) * s.OH * s.OW;
    int32_t* am = argmax + size_t(pl) * s.OH * s.OW;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
      if (two) {
        for (int oh = 0; oh < s.OH; ++oh)
          max2x2_row(dst + oh * s.OW, am + oh * s.OW, src + 2 * oh * s.W, s.W, s.OW, 2 * oh * s.W);
        continue;
      }
#endif
    if (two) {  // without bounds checks
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
  [[maybe_unused]] const bool two = windows_2x2(s);
#pragma omp parallel for schedule(static)
  for (long pl = 0; pl < planes; ++pl) {
    T* dst = din + size_t(pl) * s.H * s.W;
    const T* src = dout + size_t(pl) * s.OH * s.OW;
    const int32_t* am = argmax + size_t(pl) * s.OH * s.OW;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
      if (two) {
        for (int oh = 0; oh < s.OH; ++oh) {
          T* r = dst + 2 * oh * s.W;
          max2x2_row_backward(r, src + oh * s.OW, am + oh * s.OW, s.W, s.OW, 2 * oh * s.W);
          if (s.W % 2) r[s.W - 1] = r[2 * s.W - 1] = T(0);  // an odd last column is in no window
        }
        std::fill(dst + 2 * s.OH * s.W, dst + size_t(s.H) * s.W, T(0));  // nor an odd last row
        continue;
      }
#endif
    std::fill_n(dst, size_t(s.H) * s.W, T(0));
    for (int i = 0; i < s.OH * s.OW; ++i) dst[am[i]] += src[i];
  }
}

template void maxpool_forward_cpu<float>(float*, int32_t*, const float*, const PoolShape&);
template void maxpool_forward_cpu<double>(double*, int32_t*, const double*, const PoolShape&);
template void maxpool_backward_cpu<float>(float*, const float*, const int32_t*, const PoolShape&);
template void maxpool_backward_cpu<double>(double*, const double*, const int32_t*, const PoolShape&);

}  // namespace rs
