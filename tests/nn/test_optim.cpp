// Optimizer updates and learning-rate schedules against values worked out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <thread>

#include "backend/backend.h"
#include "nn/optimizer.h"

using namespace rs;

namespace {
std::vector<float> run(const TrainConfig& c, float p0, float g, int steps, float lr) {
  auto be = make_cpu_backend();
  Optimizer opt(*be, c, 1);
  Buffer<float> p(*be, 1), gr(*be, 1);
  p.data()[0] = p0;
  gr.data()[0] = g;
  std::vector<float> out;
  for (int i = 0; i < steps; ++i) {
    opt.step(p.data(), gr.data(), lr);
    out.push_back(p.data()[0]);
  }
  return out;
}
}  // namespace

TEST_CASE("SGD with momentum and weight decay, by hand", "[optim]") {
  TrainConfig c;
  c.optimizer = OptimizerKind::sgd, c.momentum = 0.9, c.weight_decay = 0.01;
  // step 1: g' = 0.5 + 0.01*1 = 0.51, v = 0.51, p = 1 - 0.1*0.51 = 0.949
  // step 2: g' = 0.5 + 0.00949 = 0.50949, v = 0.459 + 0.50949 = 0.96849, p = 0.949 - 0.096849 = 0.852151
  const auto p = run(c, 1.f, 0.5f, 2, 0.1f);
  CHECK(p[0] == Approx(0.949).epsilon(1e-5));
  CHECK(p[1] == Approx(0.852151).epsilon(1e-5));
}

TEST_CASE("SGD Nesterov and plain SGD, by hand", "[optim]") {
  TrainConfig c;
  c.optimizer = OptimizerKind::sgd, c.momentum = 0.9, c.nesterov = true, c.weight_decay = 0.01;
  // step 1: g' = 0.51, v = 0.51, update = g' + 0.9 v = 0.969, p = 1 - 0.0969
  CHECK(run(c, 1.f, 0.5f, 1, 0.1f)[0] == Approx(0.9031).epsilon(1e-5));
  c.nesterov = false, c.momentum = 0, c.weight_decay = 0;
  const auto p = run(c, 1.f, 0.5f, 2, 0.1f);  // p -= 0.05 each step
  CHECK(p[1] == Approx(0.9).epsilon(1e-5));
}

TEST_CASE("Adam and AdamW, by hand", "[optim]") {
  TrainConfig c;
  c.optimizer = OptimizerKind::adam, c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8, c.weight_decay = 0;
  // step 1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25: p = 1 - 0.1 * 0.5 / 0.5 = 0.9
  // step 2: m = 0.095, v = 0.00049975, mhat = 0.5, vhat = 0.25: p = 0.8
  const auto p = run(c, 1.f, 0.5f, 2, 0.1f);
  CHECK(p[0] == Approx(0.9).epsilon(1e-5));
  CHECK(p[1] == Approx(0.8).epsilon(1e-5));
  // Adam, coupled decay 0.1: g = 0.5 + 0.1 = 0.6, mhat/sqrt(vhat) = 1: p = 0.9
  c.weight_decay = 0.1;
  CHECK(run(c, 1.f, 0.5f, 1, 0.1f)[0] == Approx(0.9).epsilon(1e-5));
  // AdamW, decoupled: p = 1 - 0.1*0.1*1 = 0.99, then - 0.1 * 1 = 0.89
  c.optimizer = OptimizerKind::adamw;
  CHECK(run(c, 1.f, 0.5f, 1, 0.1f)[0] == Approx(0.89).epsilon(1e-5));
}

TEST_CASE("learning-rate schedules, by hand", "[optim]") {
  TrainConfig c;
  c.lr = 0.1, c.epochs = 2;
  CHECK(learning_rate(c, 13, 10) == Approx(0.1));
  c.schedule = "step", c.gamma = 0.5, c.step_epochs = 2, c.epochs = 5;
  CHECK(learning_rate(c, 0, 10) == Approx(0.1));
  CHECK(learning_rate(c, 19, 10) == Approx(0.1));
  CHECK(learning_rate(c, 20, 10) == Approx(0.05));
  CHECK(learning_rate(c, 45, 10) == Approx(0.025));
  c.schedule = "cosine", c.epochs = 2, c.min_lr = 0.0;
  CHECK(learning_rate(c, 0, 10) == Approx(0.1));
  CHECK(learning_rate(c, 10, 10) == Approx(0.05));
  CHECK(learning_rate(c, 20, 10) == Approx(0.0).margin(1e-12));
  c.min_lr = 0.02;
  CHECK(learning_rate(c, 10, 10) == Approx(0.06));
  c.schedule = "constant", c.warmup_epochs = 1;
  CHECK(learning_rate(c, 0, 10) == Approx(0.01));
  CHECK(learning_rate(c, 4, 10) == Approx(0.05));
  CHECK(learning_rate(c, 10, 10) == Approx(0.1));
}

TEST_CASE("denormals are flushed to zero on every CPU thread", "[optim]") {
  auto be = make_cpu_backend();  // sets FTZ/DAZ on the calling thread and every OpenMP thread
  auto flushes = [] {
    volatile float tiny = 1e-30f, denormal = 1e-40f;  // 1e-40 is below FLT_MIN (1.2e-38)
    const float result = tiny * 1e-10f, operand = denormal * 1e30f;
    return denormals_flushed() && result == 0.f && operand == 0.f;  // FTZ, then DAZ (else 1e-40, 1e-10)
  };
  int threads = 0, ok = 0;
#pragma omp parallel reduction(+ : threads, ok)
  {
    threads += 1;
    ok += flushes() ? 1 : 0;
  }
  CHECK(ok == threads);
  bool later = false;  // a thread started afterwards (MPI's, the sweep coordinator's) inherits it
  std::thread([&] { later = flushes(); }).join();
  CHECK(later);

  // Adam's first moment of a parameter whose gradient became zero decays by
  // beta1 per step: to exactly 0, never through the denormal range.
  TrainConfig c;
  c.optimizer = OptimizerKind::adam, c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8, c.weight_decay = 0;
  Optimizer opt(*be, c, 1);
  Buffer<float> p(*be, 1), g(*be, 1);
  p.data()[0] = 1.f, g.data()[0] = 1.f;
  opt.step(p.data(), g.data(), 1e-3f);
  g.data()[0] = 0.f;
  int steps = 0, denormal_steps = 0;
  for (; steps < 2000 && opt.state(0)[0] != 0.f; ++steps) {
    opt.step(p.data(), g.data(), 1e-3f);
    const float m = opt.state(0)[0];
    denormal_steps += (m != 0.f && std::fabs(m) < std::numeric_limits<float>::min()) ? 1 : 0;
  }
  CHECK(opt.state(0)[0] == 0.f);
  CHECK(denormal_steps == 0);
  CHECK(steps < 900);  // 0.1 * 0.9^k reaches FLT_MIN (1.2e-38) at k ~ 820
}
