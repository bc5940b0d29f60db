// Softmax cross-entropy, CPU: one row per sample, shared row math in math.h.
#include "kernels_cpu.h"

namespace rs {

template <class T> void softmax_xent_cpu(T* dlogits, T* loss, int32_t* pred, const T* logits, const int32_t* labels,
                                         int B, int K, T scale, T eps) {
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    int am = 0;
    loss[b] = softmax_xent_row(logits + size_t(b) * K, labels[b], K, scale, eps,
                               dlogits ? dlogits + size_t(b) * K : nullptr, &am);
    pred[b] = am;
  }
}

template void softmax_xent_cpu<float>(float*, float*, int32_t*, const float*, const int32_t*, int, int, float, float);
template void softmax_xent_cpu<double>(double*, double*, int32_t*, const double*, const int32_t*, int, int, double,
                                       double);

}  // namespace rs
