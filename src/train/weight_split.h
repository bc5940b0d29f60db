// The weight-gradient split (WeightGradSplit) for CPU ranks that hold one
// copy of the parameters a node (SharedParams): dense layers of at least
// kMinWeights weights. In backward, after its input gradient, each rank
// writes its samples' x and dy of such a layer into the node's exchange
// memory at their place in the step's batch (on several nodes the nodes
// exchange these activations, never the layer's gradient: 1 MB at batch 64
// for tf-mnist-cnn's dense1 where its gradient is 12.8 MB, and each node
// computes every row's gradient over the whole batch), waits for the node's
// ranks (so none reads the weights any more this step), and computes the
// rows of dw in its own shard over the whole batch (R times the samples for 1/R of the rows:
// the same multiply-adds), a block of rows at a time, each block applied by
// the optimizer while it is in cache. No rank writes the other rows, none
// reads its peers', and the shard's gradient never goes to memory
// (tf-mnist-cnn's dense1, 3136 x 1024, at 2 ranks: 12.8 MB fewer written and
// 12.8 MB fewer read per rank and step, for 0.5 MB of activations exchanged
// and a barrier). The rows sum the samples in batch order, as one rank does.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "mpi/shared_params.h"
#include "nn/layer.h"
#include "nn/model.h"

namespace rs {

class DenseSplit final : public WeightGradSplit {
 public:
  // On one node: dense layers of at least kMinWeights weights (4 MB: smaller
  // ones are summed, a barrier costs more).
  static constexpr size_t kMinWeights = size_t(1) << 20;
  // On several nodes: those of at least kNodesMinWeights (smaller ones cost
  // the network its latency, not its bandwidth) whose gradient is at least
  // kNodesRatio times the step's x and dy (the MLP's 784 x 512 at batch 64:
  // 4.8 times; tf-mnist-cnn's dense1 up to a global batch of 386): every node
  // then computes their rows over the whole batch, where bytes on the network
  // cost more than the multiply-adds. At larger batches (more nodes at a
  // fixed batch per rank) the gradient is smaller than the activations and
  // is exchanged instead.
  static constexpr size_t kNodesMinWeights = size_t(1) << 16, kNodesRatio = 2;
  static constexpr size_t kBlockBytes = size_t(256) << 10;  // rows of dw per block: in L2 for the update
  using Update = std::function<void(const float* g, size_t lo, size_t count)>;

  // Floats of exchange memory for `model`'s split layers at `batch` samples a
  // step on `nodes` nodes (0: the most any number of nodes needs).
  static size_t exchange_floats(const Model& model, int batch, int nodes = 0);
  // Null when no layer of `model` (its storage already in `shared`, with
  // exchange_floats(model, batch) of exchange) is split; else the split,
  // with the layers' weights marked updated in `shared`. across: split on
  // several nodes too (train.exchange_activations).
  static std::unique_ptr<DenseSplit> make(const Model& model, SharedParams& shared, int batch, bool across);

  // How this step applies a gradient to the values [lo, lo + count) of the flat buffers.
  void set_update(Update u) { m_update = std::move(u); }

  bool splits(const float* dw) const override { return find(dw) != nullptr; }
  size_t layers() const { return m_layers.size(); }
  void dense(float* dw, const float* x, const float* dy, const Pass& p, int IN, int OUT) override;

 private:
  struct Layer {
    size_t offset;  // of the weights in the flat buffers
    int IN, OUT;
    float *x, *dy;  // exchange: (batch, IN), (batch, OUT)
  };
  explicit DenseSplit(SharedParams& shared) : m_shared(shared) {}
  const Layer* find(const float* dw) const;
  SharedParams& m_shared;
  std::vector<Layer> m_layers;
  Update m_update;
  std::vector<float> m_block;  // a block of dw's rows
};

}  // namespace rs
