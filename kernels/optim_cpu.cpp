// Optimizer updates over the flat parameter buffer, CPU.
#include "kernels_cpu.h"

namespace rs {

void sgd_update_cpu(float* p, float* v, const float* g, size_t n, const SgdParams& o) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) sgd_update(p + i, v + i, g[i], o);
}

void adam_update_cpu(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) adam_update(p + i, m + i, v + i, g[i], o);
}

}  // namespace rs
