#include "train/weight_split.h"

#include <algorithm>

#include "kernels/kernels_cpu.h"

namespace rs {
namespace {

// Each split layer's (IN, OUT), in layer order.
template <class F> void for_split_layers(const Model& model, F&& f) {
  for (const auto& l : model.layers())
    if (l->spec().type == "dense" && l->in_shape().size() * size_t(l->out_shape().c) >= DenseSplit::kMinWeights)
      f(*l, int(l->in_shape().size()), l->out_shape().c);
}

}  // namespace

size_t DenseSplit::exchange_floats(const Model& model, int batch) {
  size_t n = 0;
  for_split_layers(model, [&](const rs::Layer&, int IN, int OUT) { n += size_t(batch) * size_t(IN + OUT); });
  return n;
}

std::unique_ptr<DenseSplit> DenseSplit::make(const Model& model, SharedParams& shared, int batch) {
  std::unique_ptr<DenseSplit> s(new DenseSplit(shared));
  float* at = shared.exchange();
  std::vector<std::pair<size_t, size_t>> complete;
  for_split_layers(model, [&](const rs::Layer& l, int IN, int OUT) {
    const size_t offset = size_t(l.grads[0] - shared.grads());
    s->m_layers.push_back({offset, IN, OUT, at, at + size_t(batch) * IN});
    at += size_t(batch) * size_t(IN + OUT);
    complete.push_back({offset, offset + size_t(IN) * OUT});
  });
  if (s->m_layers.empty()) return nullptr;
  std::sort(complete.begin(), complete.end());
  shared.set_complete(complete);
  return s;
}

bool DenseSplit::dense(float* dw, const float* x, const float* dy, const Pass& p, int IN, int OUT) {
  const size_t offset = size_t(dw - m_shared.grads());
  const auto l = std::find_if(m_layers.begin(), m_layers.end(), [&](const Layer& e) { return e.offset == offset; });
  if (l == m_layers.end()) return false;
  if (p.B > 0) {
    std::copy_n(x, size_t(p.B) * IN, l->x + p.first_sample * IN);
    std::copy_n(dy, size_t(p.B) * OUT, l->dy + p.first_sample * OUT);
  }
  m_shared.sync();
  const auto [first, last] = m_shared.shard();
  const size_t lo = std::max(first, offset), hi = std::min(last, offset + size_t(IN) * OUT);
  if (lo < hi)
    dense_weight_grad_cpu(dw, l->dy, l->x, p.batch(), IN, OUT, int((lo - offset) / IN),
                          int((hi - offset + IN - 1) / IN));
  return true;
}

}  // namespace rs
