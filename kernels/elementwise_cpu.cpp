// Activations and dropout, CPU: loops over the shared HD math in math.h.
#include "kernels_cpu.h"

namespace rs {

// The activation is a template argument (with_act), so each loop vectorises.
template <Act A, class T> static void act_fwd(T* y, const T* x, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) y[i] = act_forward(A, x[i]);
}
template <Act A, class T> static void act_bwd(T* dx, const T* dy, const T* x, const T* y, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) dx[i] = act_backward(A, x[i], y[i], dy[i]);
}

template <class T> void activation_forward_cpu(Act a, T* y, const T* x, size_t n) {
  with_act(a, [&](auto A) { act_fwd<decltype(A)::value>(y, x, n); });
}

template <class T> void activation_backward_cpu(Act a, T* dx, const T* dy, const T* x, const T* y, size_t n) {
  with_act(a, [&](auto A) { act_bwd<decltype(A)::value>(dx, dy, x, y, n); });
}

// y = x * mask; dx = dy * mask: the same function both ways. One Philox block
// gives the draws of four consecutive elements (dropout_scale's numbering), so
// it is computed once per four elements; the loop over blocks vectorises.
template <class T>
static void apply_dropout(T* y, const T* x, float p, uint64_t key, int B, size_t per_sample, uint64_t first_sample) {
  const T keep = T(1) / T(1 - p);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const size_t off = size_t(b) * per_sample, blocks = per_sample / 4;
    const uint64_t sample = first_sample + uint64_t(b);
#pragma omp simd
    for (size_t q = 0; q < blocks; ++q) {
      const U32x4 r = philox4x32(key, sample, q);
      for (int j = 0; j < 4; ++j) {
        const size_t e = off + 4 * q + size_t(j);
        y[e] = x[e] * (u32_to_unit(r.v[j]) >= p ? keep : T(0));
      }
    }
    for (size_t e = 4 * blocks; e < per_sample; ++e) y[off + e] = x[off + e] * dropout_scale<T>(key, sample, e, p);
  }
}

template <class T>
void dropout_forward_cpu(T* y, const T* x, float p, uint64_t key, int B, size_t per_sample, uint64_t first_sample) {
  apply_dropout(y, x, p, key, B, per_sample, first_sample);
}
template <class T>
void dropout_backward_cpu(T* dx, const T* dy, float p, uint64_t key, int B, size_t per_sample, uint64_t first_sample) {
  apply_dropout(dx, dy, p, key, B, per_sample, first_sample);
}

#define RS_INSTANTIATE(T)                                                                     \
  template void activation_forward_cpu<T>(Act, T*, const T*, size_t);                         \
  template void activation_backward_cpu<T>(Act, T*, const T*, const T*, const T*, size_t);    \
  template void dropout_forward_cpu<T>(T*, const T*, float, uint64_t, int, size_t, uint64_t); \
  template void dropout_backward_cpu<T>(T*, const T*, float, uint64_t, int, size_t, uint64_t);
RS_INSTANTIATE(float)
RS_INSTANTIATE(double)
#undef RS_INSTANTIATE

}  // namespace rs
