// Optimizers over the flat parameter buffer, and learning-rate schedules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"

namespace rs {

class Optimizer {
 public:
  Optimizer(Backend& be, const TrainConfig& cfg, size_t n);

  // One update with learning rate lr; counts steps (Adam bias correction).
  void step(float* params, const float* grads, float lr) {
    begin_step();
    update(params, grads, lr, 0, m_n);
  }
  // A step in parts: begin_step() once, then update() over ranges: `count`
  // parameters and state values from `lo`, g[0, count) their gradients.
  void begin_step() { ++m_t; }
  void update(float* params, const float* g, float lr, size_t lo, size_t count);
  // From now on state buffer k lives at state[k] (size() values, owned by the caller, as they are there).
  void use_storage(const std::vector<float*>& state);

  int64_t steps() const { return m_t; }
  void set_steps(int64_t t) { m_t = t; }
  // Named state buffers ("momentum"; "exp_avg", "exp_avg_sq"), flat like params.
  const std::vector<std::string>& state_names() const { return m_names; }
  float* state(size_t i) const { return m_state[i].data(); }
  size_t size() const { return m_n; }

 private:
  Backend& m_be;
  TrainConfig m_cfg;
  size_t m_n;
  int64_t m_t = 0;
  std::vector<std::string> m_names;
  std::vector<Buffer<float>> m_state;
};

// Learning rate for optimizer step `step` (0-based) of a run of
// cfg.epochs * steps_per_epoch steps.
double learning_rate(const TrainConfig& cfg, int64_t step, int64_t steps_per_epoch);

}  // namespace rs
