// Batch normalisation, CPU: per-channel sums in double, elementwise math from
// hd_math.h. Parallel over channels, so each sum has one fixed order.
#include "kernels_cpu.h"

namespace rs {

template <class T> void bn_sums_cpu(double* sums, const T* a, const T* b, const T* saved, int B, int C, size_t HW) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    double s1 = 0, s2 = 0;
    for (int n = 0; n < B; ++n) {
      const T* x = a + (size_t(n) * C + c) * HW;
      if (b) {  // backward: sum dy, sum dy * xhat with dy = a, x = b
        const T* xb = b + (size_t(n) * C + c) * HW;
        for (size_t i = 0; i < HW; ++i) {
          s1 += double(x[i]);
          s2 += double(x[i]) * double((xb[i] - saved[c]) * saved[C + c]);
        }
      } else {
        for (size_t i = 0; i < HW; ++i) s1 += double(x[i]), s2 += double(x[i]) * double(x[i]);
      }
    }
    sums[c] = s1, sums[C + c] = s2;
  }
}

template <class T> void bn_forward_cpu(T* y, const T* x, const T* gamma, const T* beta, T* saved, float* running_mean,
                                       float* running_var, const double* sums, const BnParams& p, int B, int C,
                                       size_t HW) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    BnStats<T> st;
    if (p.train) {
      st = bn_batch_stats<T>(sums[c], sums[C + c], p.count, p.eps);
      if (running_mean) bn_update_running(running_mean + c, running_var + c, sums[c], sums[C + c], p.count, p.momentum);
    } else {
      st = bn_running_stats<T>(running_mean[c], running_var[c], p.eps);
    }
    saved[c] = st.mean, saved[C + c] = st.inv_std;
    for (int n = 0; n < B; ++n) {
      const size_t o = (size_t(n) * C + c) * HW;
      for (size_t i = 0; i < HW; ++i) y[o + i] = bn_forward(x[o + i], st, gamma[c], beta[c]);
    }
  }
}

template <class T> void bn_backward_cpu(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                                        const T* saved, const double* local, const double* global, const BnParams& p,
                                        int B, int C, size_t HW) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    dbeta[c] = T(local[c]), dgamma[c] = T(local[C + c]);
    if (!dx) continue;
    const BnStats<T> st{saved[c], saved[C + c]};
    for (int n = 0; n < B; ++n) {
      const size_t o = (size_t(n) * C + c) * HW;
      for (size_t i = 0; i < HW; ++i)
        dx[o + i] = bn_backward(dy[o + i], x[o + i], st, gamma[c], global[c], global[C + c], p.count);
    }
  }
}

#define RS_BN(T)                                                                                                     \
  template void bn_sums_cpu<T>(double*, const T*, const T*, const T*, int, int, size_t);                             \
  template void bn_forward_cpu<T>(T*, const T*, const T*, const T*, T*, float*, float*, const double*,               \
                                  const BnParams&, int, int, size_t);                                                \
  template void bn_backward_cpu<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const double*, const double*, \
                                   const BnParams&, int, int, size_t);
RS_BN(float)
RS_BN(double)
#undef RS_BN

}  // namespace rs
