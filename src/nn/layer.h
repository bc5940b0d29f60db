// Layers. A layer knows its input and output shapes (per sample, C x H x W),
// the tensors it needs, and how to run forward and backward on a backend.
// Layers do not own parameters: the Model gives them views into its flat
// parameter and gradient buffers (params[i], grads[i] in tensors() order).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"

namespace rs {

struct Shape {
  int c = 1, h = 1, w = 1;
  size_t size() const { return size_t(c) * h * w; }
  bool operator==(const Shape&) const = default;
};

struct TensorSpec {
  std::string name;                          // "weight", "bias"
  std::vector<int64_t> shape;                // real shape, e.g. (OC, C, K, K)
  int64_t fan_in;                            // for initialisation
  std::optional<float> fill = std::nullopt;  // initialised to this constant instead (batch norm's scale 1, shift 0)
  size_t count() const {
    size_t n = 1;
    for (int64_t d : shape) n *= size_t(d);
    return n;
  }
};

struct Pass;
// Ranks that hold one copy of the parameters (SharedParams) may split a dense
// layer's weight gradient by rows: each rank computes the rows of its own
// shard over every rank's samples and updates those weights with them, where
// otherwise each computes every row over its own samples and the shard's
// owner sums them after backward. Collective over the pass's ranks, in layer
// order.
class WeightGradSplit {
 public:
  virtual ~WeightGradSplit() = default;
  virtual bool splits(const float* dw) const = 0;
  // After the layer's input gradient (the weights may change here): dw's
  // rows of this rank's shard from every rank's x (B, IN) and dy (B, OUT) of
  // this pass (B = 0, null x and dy: a rank without samples), applied.
  virtual void dense(float* dw, const float* x, const float* dy, const Pass& p, int IN, int OUT) = 0;
};

// One forward/backward pass over a (slice of a) batch.
struct Pass {
  int B = 0;                         // samples in this pass (0: this rank has none this step, but joins collectives)
  bool train = false;                // dropout active, batch statistics
  uint64_t seed = 0;                 // run seed
  uint64_t step = 0;                 // global optimizer step (keys dropout masks)
  uint64_t first_sample = 0;         // global index of sample 0 within the step's batch
  int global_B = 0;                  // samples in the step's batch over all ranks (0: B)
  StatSum* stats = nullptr;          // sums batch statistics over the ranks (null: this rank's batch is the batch)
  WeightGradSplit* split = nullptr;  // null: every layer computes its whole weight gradient
  int batch() const { return global_B ? global_B : B; }
};

class Layer {
 public:
  Layer(const LayerSpec& spec, int index, Shape in) : m_spec(spec), m_index(index), m_in(in), m_out(in) {}
  virtual ~Layer() = default;

  const std::string& name() const { return m_spec.name; }
  const LayerSpec& spec() const { return m_spec; }
  Shape in_shape() const { return m_in; }
  Shape out_shape() const { return m_out; }

  virtual std::vector<TensorSpec> tensors() const { return {}; }
  // Tensors the layer keeps but does not train (batch norm's running statistics).
  virtual std::vector<TensorSpec> state_tensors() const { return {}; }
  // Buffers the layer keeps from forward to backward, for batches up to max_batch.
  virtual void allocate(Backend&, int /*max_batch*/) {}
  // Output is the input, reinterpreted (flatten): no buffer, no work.
  virtual bool aliases_input() const { return false; }
  // Elementwise: may write its output over its input (activations, dropout),
  // unless its backward reads that input.
  virtual bool can_run_in_place() const { return false; }
  // Backward reads the layer's input (GELU): it must not run in place.
  virtual bool backward_needs_input() const { return false; }
  // Backward reads the layer's own output (activations): then the next
  // layer must not overwrite it.
  virtual bool backward_needs_output() const { return false; }

  // x (B, in), y (B, out); dy (B, out), dx (B, in) or null when not needed.
  void forward(Backend& be, const float* x, float* y, const Pass& p);
  void backward(Backend& be, const float* x, const float* y, const float* dy, float* dx, const Pass& p);
  // A rank without samples in this step (p.B == 0) still joins the layer's collectives.
  virtual void idle_forward(Backend&, const Pass&) {}
  virtual void idle_backward(Backend&, const Pass&) {}

  std::vector<float*> params, grads, state;
  int max_batch = 0;

 protected:
  virtual void do_forward(Backend& be, const float* x, float* y, const Pass& p) = 0;
  virtual void do_backward(Backend& be, const float* x, const float* y, const float* dy, float* dx, const Pass& p) = 0;

  LayerSpec m_spec;
  int m_index;
  Shape m_in, m_out;
};

// Batch normalisation's epsilon and running-average momentum (PyTorch's defaults).
inline constexpr double kBatchNormEps = 1e-5, kBatchNormMomentum = 0.1;

// Builds a layer for input shape `in`; a dense layer with out = -1 gets
// `classes` outputs. Shape errors throw UserError naming the layer.
std::unique_ptr<Layer> make_layer(const LayerSpec& spec, int index, Shape in, int classes);

}  // namespace rs
