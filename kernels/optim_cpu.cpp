// Optimizer updates over the flat parameter buffer, CPU. The per-element
// math is hd_math.h's; each variant gets its own loop with the options fixed
// (template arguments), so the loops vectorise.
#include "kernels_cpu.h"

namespace rs {
namespace {

template <bool Momentum, bool Nesterov>
void sgd_loop(float* __restrict p, float* __restrict v, const float* __restrict g, size_t n, SgdParams o) {
  o.nesterov = Nesterov;
  if (!Momentum) o.momentum = 0.f;
  float unused = 0.f;
#pragma omp parallel for simd schedule(static) firstprivate(unused, o)
  for (size_t i = 0; i < n; ++i) sgd_update(p + i, Momentum ? v + i : &unused, g[i], o);
}

template <bool Decoupled> void adam_loop(float* __restrict p, float* __restrict m, float* __restrict v,
                                         const float* __restrict g, size_t n, AdamParams o) {
  o.decoupled = Decoupled;
#pragma omp parallel for simd schedule(static) firstprivate(o)
  for (size_t i = 0; i < n; ++i) adam_update(p + i, m + i, v + i, g[i], o);
}

}  // namespace

void sgd_update_cpu(float* p, float* v, const float* g, size_t n, const SgdParams& o) {
  if (o.momentum == 0.f)
    sgd_loop<false, false>(p, v, g, n, o);
  else if (o.nesterov)
    sgd_loop<true, true>(p, v, g, n, o);
  else
    sgd_loop<true, false>(p, v, g, n, o);
}

void adam_update_cpu(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o) {
  if (o.decoupled)
    adam_loop<true>(p, m, v, g, n, o);
  else
    adam_loop<false>(p, m, v, g, n, o);
}

}  // namespace rs
