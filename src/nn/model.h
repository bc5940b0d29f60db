// Model: an ordered list of layers over one flat parameter buffer and one
// flat gradient buffer (same layout), plus the activation buffers for a
// maximum batch. Broadcasting the model is one buffer; averaging gradients is
// one allreduce.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "nn/layer.h"

namespace rs {

struct ParamInfo {
  std::string layer, tensor;  // "conv1", "weight"
  std::vector<int64_t> shape;
  size_t offset, count;  // in floats, within the flat buffers
  int64_t fan_in;
};

class Model {
 public:
  Model(Backend& be, const ModelConfig& cfg, Shape input, int classes, int max_batch);

  Backend& backend() const { return m_be; }
  Shape input_shape() const { return m_input; }
  int classes() const { return m_classes; }
  int max_batch() const { return m_max_batch; }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return m_layers; }
  const std::vector<ParamInfo>& param_info() const { return m_info; }
  size_t num_params() const { return m_params.size(); }
  // Tensors kept but not trained (batch norm's running statistics), in their own flat buffer.
  const std::vector<ParamInfo>& state_info() const { return m_state_info; }
  size_t num_state() const { return m_state.size(); }
  std::vector<float> state_host() const;
  void set_state_host(const std::vector<float>& s);

  float* params() const { return m_params.data(); }
  // From now on the parameters and the gradients live at params and grads
  // (num_params() each, owned by the caller, contents as they are there).
  void use_storage(float* params, float* grads);
  float* grads() const { return m_grads.data(); }
  float* input() const { return m_acts[0]; }  // (max_batch, C, H, W) to fill before forward

  // Initialises every tensor like PyTorch's defaults: U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
  // or its constant (TensorSpec::fill); the state to its constants.
  void init_params(uint64_t seed);
  std::vector<float> params_host() const;
  void set_params_host(const std::vector<float>& p);

  // Runs forward on input()[0..B); returns the logits (B, classes).
  const float* forward(const Pass& p);
  // Backward from dlogits (B, classes); overwrites grads(). `done(i)` is
  // called when layer i's parameter gradients are final (last layer first).
  void backward(const float* dlogits, const Pass& p, const std::function<void(size_t)>& done = {});
  // A training step in which this rank has no samples: its layers still join
  // the other ranks' collectives (batch statistics), forward then backward,
  // and calls done(i) where backward would.
  void idle_step(const Pass& p, const std::function<void(size_t)>& done = {});

  std::string summary() const;  // one line a layer: name, type, output shape, params

  // Per-layer timing (RANKSWEEP_PROFILE=1): forward and backward seconds per
  // layer since the last profile_table(), host clock after a synchronisation
  // per layer (which slows the GPU path: a diagnostic, not for production).
  bool profiling() const { return m_profile; }
  std::string profile_table();  // per training sample; resets the sums

 private:
  Backend& m_be;
  Shape m_input;
  int m_classes, m_max_batch;
  std::vector<std::unique_ptr<Layer>> m_layers;
  std::vector<ParamInfo> m_info, m_state_info;
  Buffer<float> m_params, m_grads, m_state;
  std::vector<Buffer<float>> m_act_bufs;
  std::vector<float*> m_acts;  // m_acts[i] = input of layer i; m_acts.back() = logits
  Buffer<float> m_dbuf[2];     // ping-pong activation gradients
  void point_layers();         // each layer's params and grads views into m_params, m_grads
  size_t m_first = 0;          // first layer that computes: needs no input gradient
  bool m_profile = false;
  std::vector<double> m_prof_fwd, m_prof_bwd;
  int64_t m_prof_samples = 0;
};

}  // namespace rs
