// Model assembly: shapes, the flat buffers, backward through the whole
// layer list, and dropout masks keyed by global sample index.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "config/config.h"
#include "error.h"
#include "kernels/hd_math.h"
#include "nn/model.h"

using namespace rs;
using Catch::Matchers::Contains;

namespace {
ModelConfig model_cfg(const std::string& toml) { return parse_config_text(toml, "m.toml", {}).model; }
}  // namespace

TEST_CASE("tf-mnist-cnn: tensor names and real shapes", "[model]") {
  auto be = make_cpu_backend();
  Model m(*be, model_cfg("[model]\npreset = \"tf-mnist-cnn\"\n"), Shape{1, 28, 28}, 10, 4);
  std::vector<std::string> names;
  for (const ParamInfo& p : m.param_info()) names.push_back(p.layer + "/" + p.tensor);
  CHECK(names == std::vector<std::string>{"conv1/weight", "conv1/bias", "conv2/weight", "conv2/bias", "dense1/weight",
                                          "dense1/bias", "dense2/weight", "dense2/bias"});
  CHECK(m.param_info()[0].shape == std::vector<int64_t>{32, 1, 5, 5});
  CHECK(m.param_info()[2].shape == std::vector<int64_t>{64, 32, 5, 5});
  CHECK(m.param_info()[4].shape == std::vector<int64_t>{1024, 3136});
  CHECK(m.param_info()[6].shape == std::vector<int64_t>{10, 1024});
  CHECK(m.num_params() == 3274634);
  // one flat buffer: the tensors tile it without gaps
  size_t off = 0;
  for (const ParamInfo& p : m.param_info()) {
    CHECK(p.offset == off);
    off += p.count;
  }
  CHECK(off == m.num_params());
}

TEST_CASE("shape errors name the layer", "[model]") {
  auto be = make_cpu_backend();
  REQUIRE_THROWS_WITH(Model(*be,
                            model_cfg("[model]\nlayers = [{ type = \"conv2d\", out = 2, kernel = 5 }, "
                                      "{ type = \"flatten\" }, { type = \"dense\", out = 10 }]\n"),
                            Shape{1, 3, 3}, 10, 4),
                      Contains("conv1") && Contains("does not fit"));
  REQUIRE_THROWS_WITH(
      Model(*be, model_cfg("[model]\nlayers = [{ type = \"flatten\" }, { type = \"dense\", out = 7 }]\n"),
            Shape{1, 4, 4}, 10, 4),
      Contains("7 outputs") && Contains("10 classes"));
}

TEST_CASE("init is seeded and bounded by 1/sqrt(fan_in)", "[model]") {
  auto be = make_cpu_backend();
  const ModelConfig mc = model_cfg("[model]\nhidden = [16]\n");
  Model a(*be, mc, Shape{1, 5, 5}, 3, 2), b(*be, mc, Shape{1, 5, 5}, 3, 2);
  a.init_params(1);
  b.init_params(1);
  CHECK(a.params_host() == b.params_host());
  b.init_params(2);
  CHECK(a.params_host() != b.params_host());
  const auto p = a.params_host();
  for (const ParamInfo& pi : a.param_info())
    for (size_t i = 0; i < pi.count; ++i) REQUIRE(std::abs(p[pi.offset + i]) <= 1 / std::sqrt(float(pi.fan_in)));
}

TEST_CASE("model backward matches finite differences of the loss", "[model][grad]") {
  // The second model: a GELU (its backward reads its input) after dropout,
  // which must not run in place over that input, and one before dropout.
  const char* models[] = {R"([model]
layers = [ { type = "conv2d", out = 3, kernel = 3, padding = 1, stride = 2 }, { type = "tanh" },
           { type = "flatten" }, { type = "dense", out = 6 }, { type = "sigmoid" },
           { type = "dropout", p = 0.25 }, { type = "dense", out = 4 } ]
)",
                          R"([model]
layers = [ { type = "flatten" }, { type = "dense", out = 6 }, { type = "gelu" }, { type = "dropout", p = 0.25 },
           { type = "gelu" }, { type = "dense", out = 4 } ]
)"};
  for (const char* text : models) DYNAMIC_SECTION(text) {
      auto be = make_cpu_backend();
      const ModelConfig mc = model_cfg(text);
      const int B = 3;
      Model m(*be, mc, Shape{2, 5, 6}, 4, B);
      m.init_params(3);
      std::mt19937 g(9);
      std::uniform_real_distribution<float> u(-1, 1);
      for (size_t i = 0; i < size_t(B) * 60; ++i) m.input()[i] = u(g);
      const std::vector<int32_t> labels{1, 3, 0};
      const Pass pass{.B = B, .train = true, .seed = 5, .step = 11};
      std::vector<float> dlogits(size_t(B) * 4);
      auto total = [&] {
        double metrics[2] = {0, 0};
        be->softmax_xent(nullptr, m.forward(pass), labels.data(), B, 4, 1.f, 0.f, metrics);
        return metrics[0] / B;
      };
      double metrics[2] = {0, 0};
      be->softmax_xent(dlogits.data(), m.forward(pass), labels.data(), B, 4, 1.f / B, 0.f, metrics);
      m.backward(dlogits.data(), pass);
      const std::vector<float> grad(m.grads(), m.grads() + m.num_params());
      // Float central differences: loose but meaningful tolerance.
      double worst = 0;
      for (size_t i = 0; i < m.num_params(); ++i) {
        float* p = m.params() + i;
        const float keep = *p, eps = 1e-2f;
        *p = keep + eps;
        const double fp = total();
        *p = keep - eps;
        const double fm = total();
        *p = keep;
        const double num = (fp - fm) / (2 * double(eps));
        worst = std::max(worst, std::abs(num - grad[i]) / std::max({std::abs(num), double(std::abs(grad[i])), 1e-2}));
      }
      INFO("worst relative error " << worst << " over " << m.num_params() << " parameters");
      CHECK(worst < 2e-2);
    }
}

TEST_CASE("a ReLU before a max-pool runs after it, with the same outputs and gradients", "[model]") {
  // The reference keeps the written order: a dropout of p = 0 (a copy)
  // between them stops the swap. Inputs on a coarse grid: ties in the
  // windows, and windows whose values are all <= 0. Overlapping 3x3 windows
  // with padding as well as 2x2.
  for (const char* pool : {"kernel = 2, stride = 2", "kernel = 3, stride = 2, padding = 1"}) DYNAMIC_SECTION(pool) {
      const auto text = [&](const char* between) {
        return fmt::format(R"([model]
layers = [ {{ type = "conv2d", out = 4, kernel = 3, padding = 1 }}, {{ type = "relu" }}, {}
           {{ type = "maxpool", {} }}, {{ type = "flatten" }}, {{ type = "dense", out = 3 }} ]
)",
                           between, pool);
      };
      auto be = make_cpu_backend();
      const int B = 4;
      Model swapped(*be, model_cfg(text("")), Shape{2, 6, 7}, 3, B);
      Model written(*be, model_cfg(text(R"({ type = "dropout", p = 0.0 },)")), Shape{2, 6, 7}, 3, B);
      REQUIRE(swapped.layers()[1]->spec().type == "maxpool");
      REQUIRE(written.layers()[1]->spec().type == "relu");
      swapped.init_params(8), written.init_params(8);
      std::mt19937 g(10);
      std::uniform_int_distribution<int> level(-3, 3);
      for (size_t i = 0; i < size_t(B) * 84; ++i) swapped.input()[i] = written.input()[i] = 0.25f * float(level(g));
      const Pass pass{.B = B, .train = true, .seed = 5, .step = 1};
      const std::vector<float> ys(swapped.forward(pass), swapped.forward(pass) + B * 3);
      const std::vector<float> yw(written.forward(pass), written.forward(pass) + B * 3);
      CHECK(ys == yw);
      std::vector<float> dlogits(size_t(B) * 3);
      for (float& d : dlogits) d = 0.5f * float(level(g));
      swapped.backward(dlogits.data(), pass), written.backward(dlogits.data(), pass);
      CHECK(std::vector<float>(swapped.grads(), swapped.grads() + swapped.num_params()) ==
            std::vector<float>(written.grads(), written.grads() + written.num_params()));
    }
}

TEST_CASE("dropout masks depend on the global sample index, not the slice", "[model]") {
  auto be = make_cpu_backend();
  const size_t per = 50;
  std::vector<float> x(4 * per, 1.f), whole(4 * per), half(2 * per);
  const uint64_t key = 1234;
  be->dropout_forward(whole.data(), x.data(), 0.5f, key, 4, per, 100);
  be->dropout_forward(half.data(), x.data(), 0.5f, key, 2, per, 102);  // samples 102, 103
  CHECK(std::equal(half.begin(), half.end(), whole.begin() + 2 * per));
  be->dropout_forward(half.data(), x.data(), 0.5f, key + 1, 2, per, 102);
  CHECK(!std::equal(half.begin(), half.end(), whole.begin() + 2 * per));
}

TEST_CASE("batch norm: running statistics move in training, inference uses them", "[model]") {
  auto be = make_cpu_backend();
  const ModelConfig mc = model_cfg("[model]\nhidden = [6]\nbatch_norm = true\n");
  Model m(*be, mc, Shape{1, 2, 2}, 3, 8);
  m.init_params(3);
  std::vector<std::string> state;
  for (const ParamInfo& p : m.state_info()) state.push_back(p.layer + "/" + p.tensor);
  CHECK(state == std::vector<std::string>{"bn1/running_mean", "bn1/running_var"});
  CHECK(m.state_host() == std::vector<float>{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1});
  for (const ParamInfo& p : m.param_info())  // scale 1, shift 0
    if (p.layer == "bn1") {
      const std::vector<float> all = m.params_host();
      CHECK(std::vector<float>(all.begin() + long(p.offset), all.begin() + long(p.offset + p.count)) ==
            std::vector<float>(6, p.tensor == "weight" ? 1.f : 0.f));
    }
  std::mt19937 g(5);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> in(8 * 4);
  for (float& v : in) v = u(g);
  // training pass: the dense layer's outputs' batch statistics move the running estimates by momentum 0.1
  be->upload(m.input(), in.data(), in.size() * sizeof(float));
  m.forward(Pass{.B = 8, .train = true, .seed = 1});
  std::vector<float> h(8 * 6);  // the dense layer's outputs, the batch norm's input
  const std::vector<float> all = m.params_host();
  const ParamInfo& w = m.param_info()[0];  // dense1 weight (6, 4), bias (6)
  const ParamInfo& b = m.param_info()[1];
  for (int s = 0; s < 8; ++s)
    for (int o = 0; o < 6; ++o) {
      double z = all[b.offset + o];
      for (int i = 0; i < 4; ++i) z += double(all[w.offset + size_t(o) * 4 + i]) * in[size_t(s) * 4 + i];
      h[size_t(s) * 6 + o] = float(z);
    }
  const std::vector<float> st = m.state_host();
  for (int o = 0; o < 6; ++o) {
    double mean = 0, var = 0;
    for (int s = 0; s < 8; ++s) mean += h[size_t(s) * 6 + o] / 8.0;
    for (int s = 0; s < 8; ++s) var += (h[size_t(s) * 6 + o] - mean) * (h[size_t(s) * 6 + o] - mean) / 7.0;
    CHECK(st[size_t(o)] == Approx(0.1 * mean).margin(1e-6));
    CHECK(st[6 + size_t(o)] == Approx(0.9 + 0.1 * var).margin(1e-6));
  }
  // inference: a sample's logits do not depend on the other samples of its batch
  const float* logits = m.forward(Pass{.B = 8});
  std::vector<float> batch8(3);
  be->download(batch8.data(), logits + 3 * 5, 3 * sizeof(float));
  be->upload(m.input(), in.data() + 4 * 5, 4 * sizeof(float));
  logits = m.forward(Pass{.B = 1});
  std::vector<float> alone(3);
  be->download(alone.data(), logits, 3 * sizeof(float));
  CHECK(alone == batch8);
  CHECK(m.state_host() == st);  // and it moves nothing
}
