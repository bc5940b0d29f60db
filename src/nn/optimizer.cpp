#include "nn/optimizer.h"

#include <cmath>
#include <numbers>

namespace rs {

Optimizer::Optimizer(Backend& be, const TrainConfig& cfg, size_t n) : m_be(be), m_cfg(cfg), m_n(n) {
  if (cfg.optimizer == OptimizerKind::sgd) {
    if (cfg.momentum != 0) m_names = {"momentum"};
  } else {
    m_names = {"exp_avg", "exp_avg_sq"};
  }
  std::vector<float> zeros(n, 0.f);
  for (size_t i = 0; i < m_names.size(); ++i) {
    m_state.emplace_back(be, n);
    be.upload(m_state.back().data(), zeros.data(), n * sizeof(float));
  }
}

void Optimizer::use_storage(const std::vector<float*>& state) {
  for (size_t k = 0; k < m_state.size(); ++k) m_state[k] = Buffer<float>::borrow(state.at(k), m_n);
}

void Optimizer::update(float* p, const float* g, float lr, size_t lo, size_t count) {
  p += lo;
  if (m_cfg.optimizer == OptimizerKind::sgd) {
    const SgdParams o{lr, float(m_cfg.momentum), float(m_cfg.weight_decay), m_cfg.nesterov};
    m_be.sgd_update(p, m_state.empty() ? nullptr : m_state[0].data() + lo, g, count, o);
  } else {
    const AdamParams o{lr,
                       float(m_cfg.beta1),
                       float(m_cfg.beta2),
                       float(m_cfg.eps),
                       float(m_cfg.weight_decay),
                       m_cfg.optimizer == OptimizerKind::adamw,
                       float(1.0 - std::pow(m_cfg.beta1, double(m_t))),
                       float(1.0 - std::pow(m_cfg.beta2, double(m_t)))};
    m_be.adam_update(p, m_state[0].data() + lo, m_state[1].data() + lo, g, count, o);
  }
}

double learning_rate(const TrainConfig& c, int64_t step, int64_t steps_per_epoch) {
  const double epoch = double(step) / double(steps_per_epoch);
  double lr = c.lr;
  if (c.schedule == "step") {
    lr = c.lr * std::pow(c.gamma, std::floor(epoch / double(c.step_epochs)));
  } else if (c.schedule == "cosine") {
    const double total = double(c.epochs) * double(steps_per_epoch);
    lr = c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * double(step) / total));
  }
  const double warm = c.warmup_epochs * double(steps_per_epoch);
  if (warm > 0 && double(step) < warm) lr *= double(step + 1) / warm;
  return lr;
}

}  // namespace rs
