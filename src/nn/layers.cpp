#include <stdexcept>

#include "error.h"
#include "kernels/hd_math.h"
#include "nn/layer.h"

namespace rs {

void Layer::forward(Backend& be, const float* x, float* y, const Pass& p) {
  if (p.B < 1 || p.B > max_batch)
    throw std::logic_error(fmt::format("{}: batch {} outside [1, {}]", name(), p.B, max_batch));
  do_forward(be, x, y, p);
}

void Layer::backward(Backend& be, const float* x, const float* y, const float* dy, float* dx, const Pass& p) {
  if (p.B < 1 || p.B > max_batch)
    throw std::logic_error(fmt::format("{}: batch {} outside [1, {}]", name(), p.B, max_batch));
  do_backward(be, x, y, dy, dx, p);
}

namespace {

class Dense final : public Layer {
 public:
  Dense(const LayerSpec& s, int i, Shape in, int classes) : Layer(s, i, in) {
    m_out = Shape{int(s.out < 0 ? classes : s.out), 1, 1};
  }
  std::vector<TensorSpec> tensors() const override {
    const int64_t IN = int64_t(m_in.size()), OUT = m_out.c;
    return {{"weight", {OUT, IN}, IN}, {"bias", {OUT}, IN}};
  }

 protected:
  void do_forward(Backend& be, const float* x, float* y, const Pass& p) override {
    be.dense_forward(y, x, params[0], params[1], p.B, int(m_in.size()), m_out.c);
  }
  void do_backward(Backend& be, const float* x, const float*, const float* dy, float* dx, const Pass& p) override {
    const int IN = int(m_in.size());
    const bool split = p.split && p.split->splits(grads[0]);
    be.dense_backward(dx, split ? nullptr : grads[0], grads[1], dy, x, params[0], p.B, IN, m_out.c);
    if (split) p.split->dense(grads[0], x, dy, p, IN, m_out.c);
  }
  void idle_backward(Backend&, const Pass& p) override {
    if (p.split && p.split->splits(grads[0])) p.split->dense(grads[0], nullptr, nullptr, p, int(m_in.size()), m_out.c);
  }
};

class Conv2d final : public Layer {
 public:
  Conv2d(const LayerSpec& s, int i, Shape in) : Layer(s, i, in) {
    const int64_t oh = (in.h + 2 * s.padding - s.kernel) / s.stride + 1;
    const int64_t ow = (in.w + 2 * s.padding - s.kernel) / s.stride + 1;
    if (in.h + 2 * s.padding < s.kernel || in.w + 2 * s.padding < s.kernel)
      fail("model layer {}: kernel {} does not fit input {}x{} with padding {}", s.name, s.kernel, in.h, in.w,
           s.padding);
    m_out = Shape{int(s.out), int(oh), int(ow)};
  }
  std::vector<TensorSpec> tensors() const override {
    const int64_t K = m_spec.kernel, fan_in = int64_t(m_in.c) * K * K;
    return {{"weight", {m_out.c, m_in.c, K, K}, fan_in}, {"bias", {m_out.c}, fan_in}};
  }

 protected:
  ConvShape shape(int B) const {
    return ConvShape{
        B,       m_in.c, m_in.h, m_in.w, m_out.c, int(m_spec.kernel), int(m_spec.stride), int(m_spec.padding),
        m_out.h, m_out.w};
  }
  void do_forward(Backend& be, const float* x, float* y, const Pass& p) override {
    be.conv2d_forward(y, x, params[0], params[1], shape(p.B));
  }
  void do_backward(Backend& be, const float* x, const float*, const float* dy, float* dx, const Pass& p) override {
    be.conv2d_backward(dx, grads[0], grads[1], dy, x, params[0], shape(p.B));
  }
};

class MaxPool final : public Layer {
 public:
  MaxPool(const LayerSpec& s, int i, Shape in) : Layer(s, i, in) {
    if (in.h + 2 * s.padding < s.kernel || in.w + 2 * s.padding < s.kernel)
      fail("model layer {}: pool size {} does not fit input {}x{}", s.name, s.kernel, in.h, in.w);
    m_out = Shape{in.c, int((in.h + 2 * s.padding - s.kernel) / s.stride + 1),
                  int((in.w + 2 * s.padding - s.kernel) / s.stride + 1)};
  }
  void allocate(Backend& be, int max_batch) override {
    m_argmax = Buffer<int32_t>(be, size_t(max_batch) * m_out.size());
  }

 protected:
  PoolShape shape(int B) const {
    return PoolShape{B,       m_in.c, m_in.h, m_in.w, int(m_spec.kernel), int(m_spec.stride), int(m_spec.padding),
                     m_out.h, m_out.w};
  }
  void do_forward(Backend& be, const float* x, float* y, const Pass& p) override {
    be.maxpool_forward(y, m_argmax.data(), x, shape(p.B));
  }
  void do_backward(Backend& be, const float*, const float*, const float* dy, float* dx, const Pass& p) override {
    if (dx) be.maxpool_backward(dx, dy, m_argmax.data(), shape(p.B));
  }

 private:
  Buffer<int32_t> m_argmax;  // (max_batch, C, OH, OW): offset of each output's winner in its input plane
};

class Activation final : public Layer {
 public:
  Activation(const LayerSpec& s, int i, Shape in, const ActInfo& a) : Layer(s, i, in), m_act(a) {}
  bool can_run_in_place() const override { return true; }
  bool backward_needs_input() const override { return m_act.reads_input; }
  bool backward_needs_output() const override { return !m_act.reads_input; }

 protected:
  void do_forward(Backend& be, const float* x, float* y, const Pass& p) override {
    be.activation_forward(m_act.act, y, x, size_t(p.B) * m_in.size());
  }
  void do_backward(Backend& be, const float* x, const float* y, const float* dy, float* dx, const Pass& p) override {
    if (dx) be.activation_backward(m_act.act, dx, dy, x, y, size_t(p.B) * m_in.size());
  }
  ActInfo m_act;
};

class Dropout final : public Layer {
 public:
  using Layer::Layer;
  bool can_run_in_place() const override { return true; }

 protected:
  uint64_t key(const Pass& p) const { return rng_key(p.seed, 0x44524f50u + uint64_t(m_index), p.step); }
  void do_forward(Backend& be, const float* x, float* y, const Pass& p) override {
    if (p.train && m_spec.p > 0)
      be.dropout_forward(y, x, float(m_spec.p), key(p), p.B, m_in.size(), p.first_sample);
    else if (y != x)
      be.copy(y, x, sizeof(float) * p.B * m_in.size());
  }
  void do_backward(Backend& be, const float*, const float*, const float* dy, float* dx, const Pass& p) override {
    if (!dx) return;
    if (m_spec.p > 0)
      be.dropout_backward(dx, dy, float(m_spec.p), key(p), p.B, m_in.size(), p.first_sample);
    else
      be.copy(dx, dy, sizeof(float) * p.B * m_in.size());
  }
};

// Batch normalisation over channels (per feature after a dense layer):
// y = gamma (x - mean) / sqrt(var + eps) + beta. Training uses the batch's
// statistics summed over every rank (synchronised batch norm: 1, 2 or 3
// ranks normalise with the same numbers, those of the global batch);
// inference uses the running estimates, which every rank moves identically.
class BatchNorm final : public Layer {
 public:
  BatchNorm(const LayerSpec& s, int i, Shape in) : Layer(s, i, in) {}
  std::vector<TensorSpec> tensors() const override {
    return {{"weight", {m_in.c}, 1, 1.f}, {"bias", {m_in.c}, 1, 0.f}};
  }
  std::vector<TensorSpec> state_tensors() const override {
    return {{"running_mean", {m_in.c}, 1, 0.f}, {"running_var", {m_in.c}, 1, 1.f}};
  }
  void allocate(Backend& be, int) override {
    m_saved = Buffer<float>(be, 2 * size_t(m_in.c));
    m_sums = Buffer<double>(be, 2 * size_t(m_in.c));
    m_local = Buffer<double>(be, 2 * size_t(m_in.c));
  }
  void idle_forward(Backend& be, const Pass& p) override {
    if (!p.train) return;
    be.zero(m_sums.data(), bytes());
    statistics(be, nullptr, nullptr, p);
  }
  void idle_backward(Backend& be, const Pass& p) override {
    be.zero(m_sums.data(), bytes());
    if (p.stats) p.stats->sum(m_sums.data(), 2 * size_t(m_in.c));
  }

 protected:
  size_t bytes() const { return 2 * size_t(m_in.c) * sizeof(double); }
  size_t HW() const { return size_t(m_in.h) * m_in.w; }
  BnParams params_for(const Pass& p) const {
    return {p.train, double(p.batch()) * double(HW()), kBatchNormMomentum, kBatchNormEps};
  }
  // Training: sums over the global batch, then normalise (B = 0: only the running estimates move).
  void statistics(Backend& be, const float* x, float* y, const Pass& p) {
    if (p.stats) p.stats->sum(m_sums.data(), 2 * size_t(m_in.c));
    be.bn_forward(y, x, params[0], params[1], m_saved.data(), state[0], state[1], m_sums.data(), params_for(p),
                  x ? p.B : 0, m_in.c, HW());
  }
  void do_forward(Backend& be, const float* x, float* y, const Pass& p) override {
    if (!p.train)
      return be.bn_forward(y, x, params[0], params[1], m_saved.data(), state[0], state[1], nullptr, params_for(p), p.B,
                           m_in.c, HW());
    be.bn_sums(m_sums.data(), x, nullptr, nullptr, p.B, m_in.c, HW());
    statistics(be, x, y, p);
  }
  void do_backward(Backend& be, const float* x, const float*, const float* dy, float* dx, const Pass& p) override {
    be.bn_sums(m_local.data(), dy, x, m_saved.data(), p.B, m_in.c, HW());  // this rank's: the parameter gradients
    be.copy(m_sums.data(), m_local.data(), bytes());
    if (p.stats) p.stats->sum(m_sums.data(), 2 * size_t(m_in.c));  // every rank's: the input gradient
    be.bn_backward(dx, grads[0], grads[1], dy, x, params[0], m_saved.data(), m_local.data(), m_sums.data(),
                   params_for(p), p.B, m_in.c, HW());
  }

 private:
  Buffer<float> m_saved;           // (2C) the batch's mean and 1/std, from forward to backward
  Buffer<double> m_sums, m_local;  // (2C) statistics summed over the ranks; this rank's backward sums
};

class Flatten final : public Layer {
 public:
  Flatten(const LayerSpec& s, int i, Shape in) : Layer(s, i, in) { m_out = Shape{int(in.size()), 1, 1}; }
  bool aliases_input() const override { return true; }

 protected:
  void do_forward(Backend&, const float*, float*, const Pass&) override {}
  void do_backward(Backend&, const float*, const float*, const float*, float*, const Pass&) override {}
};

}  // namespace

std::unique_ptr<Layer> make_layer(const LayerSpec& s, int index, Shape in, int classes) {
  const std::string& t = s.type;
  if (t == "dense") return std::make_unique<Dense>(s, index, in, classes);
  if (t == "conv2d") return std::make_unique<Conv2d>(s, index, in);
  if (t == "maxpool") return std::make_unique<MaxPool>(s, index, in);
  for (const ActInfo& a : kActivations)
    if (t == a.name) return std::make_unique<Activation>(s, index, in, a);
  if (t == "dropout") return std::make_unique<Dropout>(s, index, in);
  if (t == "flatten") return std::make_unique<Flatten>(s, index, in);
  if (t == "batchnorm") return std::make_unique<BatchNorm>(s, index, in);
  fail("model layer {}: unknown type \"{}\"", s.name, t);
}

}  // namespace rs
