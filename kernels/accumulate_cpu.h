// Helpers of the CPU kernels' sparse gradient paths (conv2d): after ReLU and
// max-pool most of an output gradient is zero, and the products that use it
// can skip those values.
#pragma once

#include <cstddef>
#include <cstring>

namespace rs {

// dst[0, len) += sum_j g[j] * src[j][off, off + len): blocks of four 64-byte
// vectors kept in registers across the whole list (one load and store of dst
// per block, not per term). GCC/Clang vector extensions: the compiler splits
// them for narrower vector units.
template <class T> inline void accumulate(T* dst, int len, const T* const* src, size_t off, const T* g, int count) {
  typedef T V __attribute__((vector_size(64)));
  constexpr int kV = int(sizeof(V) / sizeof(T)), kB = 4 * kV;
  int b = 0;
  for (; b + kB <= len; b += kB) {
    V r[4];
    std::memcpy(r, dst + b, sizeof r);
    for (int j = 0; j < count; ++j) {
      V x[4];
      std::memcpy(x, src[j] + off + b, sizeof x);
      const V gj = V{} + g[j];
      r[0] += gj * x[0], r[1] += gj * x[1], r[2] += gj * x[2], r[3] += gj * x[3];
    }
    std::memcpy(dst + b, r, sizeof r);
  }
  for (; b + kV <= len; b += kV) {
    V r;
    std::memcpy(&r, dst + b, sizeof r);
    for (int j = 0; j < count; ++j) {
      V x;
      std::memcpy(&x, src[j] + off + b, sizeof x);
      r += (V{} + g[j]) * x;
    }
    std::memcpy(dst + b, &r, sizeof r);
  }
  for (int j = 0; j < count && b < len; ++j) {
    const T* x = src[j] + off;
    for (int i = b; i < len; ++i) dst[i] += g[j] * x[i];
  }
}

// The share of non-zero values in dout[0, n).
template <class T> inline double density(const T* dout, size_t n) {
  size_t nz = 0;
#pragma omp parallel for simd reduction(+ : nz) schedule(static)
  for (size_t i = 0; i < n; ++i) nz += dout[i] != T(0);
  return n ? double(nz) / double(n) : 1.0;
}

}  // namespace rs
