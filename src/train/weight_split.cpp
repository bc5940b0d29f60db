#include "train/weight_split.h"

#include <algorithm>

#include "kernels/kernels_cpu.h"

namespace rs {
namespace {

// Whether a dense layer's weight gradient is split for a group on `nodes` nodes.
bool split(size_t IN, size_t OUT, int batch, int nodes, bool across = true) {
  if (nodes == 1) return IN * OUT >= DenseSplit::kMinWeights;
  if (!across) return false;
  return IN * OUT >= DenseSplit::kNodesMinWeights && IN * OUT >= DenseSplit::kNodesRatio * size_t(batch) * (IN + OUT);
}

// Each dense layer's (IN, OUT) for which pick(IN, OUT) holds, in layer order.
template <class P, class F> void for_dense_layers(const Model& model, P&& pick, F&& f) {
  for (const auto& l : model.layers()) {
    if (l->spec().type != "dense") continue;
    const size_t IN = l->in_shape().size(), OUT = size_t(l->out_shape().c);
    if (pick(IN, OUT)) f(*l, int(IN), int(OUT));
  }
}

}  // namespace

size_t DenseSplit::exchange_floats(const Model& model, int batch, int nodes) {
  size_t n = 0;
  auto pick = [&](size_t IN, size_t OUT) {
    return nodes ? split(IN, OUT, batch, nodes) : split(IN, OUT, batch, 1) || split(IN, OUT, batch, 2);
  };
  for_dense_layers(model, pick, [&](const rs::Layer&, int IN, int OUT) { n += size_t(batch) * size_t(IN + OUT); });
  return n;
}

std::unique_ptr<DenseSplit> DenseSplit::make(const Model& model, SharedParams& shared, int batch, bool across) {
  std::unique_ptr<DenseSplit> s(new DenseSplit(shared));
  float* at = shared.exchange();
  std::vector<std::pair<size_t, size_t>> updated;
  auto pick = [&](size_t IN, size_t OUT) { return split(IN, OUT, batch, shared.nodes(), across); };
  for_dense_layers(model, pick, [&](const rs::Layer& l, int IN, int OUT) {
    const size_t offset = size_t(l.grads[0] - shared.grads());
    s->m_layers.push_back({offset, IN, OUT, at, at + size_t(batch) * IN});
    at += size_t(batch) * size_t(IN + OUT);
    updated.push_back({offset, offset + size_t(IN) * OUT});
  });
  if (s->m_layers.empty()) return nullptr;
  std::sort(updated.begin(), updated.end());
  shared.set_updated(updated);
  return s;
}

const DenseSplit::Layer* DenseSplit::find(const float* dw) const {
  const float* g = m_shared.grads();
  if (dw < g) return nullptr;
  for (const Layer& l : m_layers)
    if (l.offset == size_t(dw - g)) return &l;
  return nullptr;
}

void DenseSplit::dense(float* dw, const float* x, const float* dy, const Pass& p, int IN, int OUT) {
  const Layer& l = *find(dw);
  if (p.B > 0) {
    std::copy_n(x, size_t(p.B) * IN, l.x + p.first_sample * IN);
    std::copy_n(dy, size_t(p.B) * OUT, l.dy + p.first_sample * OUT);
  }
  m_shared.gather_samples(l.x, size_t(IN), p.batch());  // other nodes' samples (several nodes)
  m_shared.gather_samples(l.dy, size_t(OUT), p.batch());
  m_shared.sync();
  const auto [first, last] = m_shared.shard();
  const size_t lo = std::max(first, l.offset), hi = std::min(last, l.offset + size_t(IN) * OUT);
  if (lo >= hi) return;
  const int B = p.batch(), rows = std::max(1, int(kBlockBytes / sizeof(float) / size_t(IN)));
  const GradPath path = dense_grad_path(l.dy, B, OUT);  // once: every block takes the same
  m_block.resize(size_t(rows) * IN);
  for (int o0 = int((lo - l.offset) / IN), end = int((hi - l.offset + IN - 1) / IN); o0 < end; o0 += rows) {
    const int o1 = std::min(end, o0 + rows);
    dense_weight_grad_cpu(m_block.data(), l.dy, l.x, B, IN, OUT, o0, o1, path);
    const size_t b0 = l.offset + size_t(o0) * IN, u0 = std::max(lo, b0), u1 = std::min(hi, l.offset + size_t(o1) * IN);
    m_update(m_block.data() + (u0 - b0), u0, u1 - u0);
  }
}

}  // namespace rs
