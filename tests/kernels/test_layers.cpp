// The other layers' CPU kernels and the loss: finite-difference gradients of
// max-pool, every activation, dropout, softmax cross-entropy and batch norm.
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/grad.h"
#include "kernels/kernels_cpu.h"

using namespace rs;
using namespace rs::test;

TEST_CASE("maxpool: gradient with overlapping windows and padding", "[grad]") {
  struct Case {
    int B, C, H, W, K, stride, pad;
  };
  for (const Case c : {Case{2, 3, 7, 5, 2, 2, 0}, Case{1, 2, 7, 7, 3, 2, 1}, Case{2, 1, 5, 6, 3, 1, 0}}) {
    DYNAMIC_SECTION("K" << c.K << " s" << c.stride << " p" << c.pad) {
      std::mt19937 g(4);
      const PoolShape s{c.B,
                        c.C,
                        c.H,
                        c.W,
                        c.K,
                        c.stride,
                        c.pad,
                        (c.H + 2 * c.pad - c.K) / c.stride + 1,
                        (c.W + 2 * c.pad - c.K) / c.stride + 1};
      // Distinct values 0.01 apart: no ties, so no kinks within +-eps.
      Vec x(size_t(c.B) * c.C * c.H * c.W);
      for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01 * double(i);
      std::shuffle(x.begin(), x.end(), g);
      const Vec r = random_vec(size_t(c.B) * c.C * s.OH * s.OW, g);
      Vec y(r.size()), dx(x.size());
      std::vector<int32_t> am(r.size());
      auto f = [&] {
        maxpool_forward_cpu(y.data(), am.data(), x.data(), s);
        return dot(y, r);
      };
      f();
      maxpool_backward_cpu(dx.data(), r.data(), am.data(), s);
      check_grad("maxpool dx", x, dx, f);
    }
  }
}

TEST_CASE("maxpool 2x2 stride 2: ties, NaN, odd and wide planes, in float", "[layers]") {
  // The float kernel's vectorised path against a plain window scan: the first
  // maximum wins (x00, x01, x10, x11), a NaN never beats a value, an odd last
  // row or column is in no window and gets no gradient.
  for (const int H : {2, 5, 28})
    for (const int W : {2, 7, 28, 33, 66}) DYNAMIC_SECTION(H << "x" << W) {
        const PoolShape s{3, 2, H, W, 2, 2, 0, H / 2, W / 2};
        std::mt19937 g(size_t(H * 100 + W));
        std::uniform_int_distribution<int> level(-2, 2);  // few levels: many ties
        std::vector<float> x(size_t(s.B) * s.C * H * W), dy(size_t(s.B) * s.C * s.OH * s.OW);
        for (float& v : x) v = float(level(g));
        x[1] = std::nanf(""), x[x.size() / 2] = std::nanf("");
        for (float& v : dy) v = float(level(g)) + 0.5f;
        std::vector<float> y(dy.size()), dx(x.size(), 7.f), ry(dy.size()), rdx(x.size(), 0.f);
        std::vector<int32_t> am(dy.size()), ram(dy.size());
        for (size_t pl = 0; pl < size_t(s.B) * s.C; ++pl)
          for (int oh = 0; oh < s.OH; ++oh)
            for (int ow = 0; ow < s.OW; ++ow) {
              const float* src = x.data() + pl * H * W;
              int where = 2 * oh * W + 2 * ow;
              for (const int k : {where + 1, where + W, where + W + 1})
                if (src[k] > src[where]) where = k;
              const size_t o = pl * s.OH * s.OW + size_t(oh) * s.OW + ow;
              ry[o] = src[where], ram[o] = where;
              rdx[pl * H * W + size_t(where)] += dy[o];
            }
        maxpool_forward_cpu(y.data(), am.data(), x.data(), s);
        maxpool_backward_cpu(dx.data(), dy.data(), am.data(), s);
        CHECK(am == ram);
        for (size_t i = 0; i < y.size(); ++i) REQUIRE((y[i] == ry[i] || (std::isnan(y[i]) && std::isnan(ry[i]))));
        CHECK(dx == rdx);
      }
}

TEST_CASE("activations: every one's gradient (kActivations)", "[grad]") {
  for (const ActInfo& info : kActivations) {
    const Act a = info.act;
    DYNAMIC_SECTION("act " << info.name) {
      std::mt19937 g(5);
      Vec x = random_vec(37, g, -3, 3);
      const Vec r = random_vec(37, g);
      Vec y(37), dx(37);
      auto f = [&] {
        activation_forward_cpu(a, y.data(), x.data(), y.size());
        return dot(y, r);
      };
      f();
      activation_backward_cpu(a, dx.data(), r.data(), x.data(), y.data(), y.size());
      // ReLU's kink at 0: skip a small window around it.
      check_grad("activation dx", x, dx, f, [&](size_t i) { return a == Act::relu && std::abs(x[i]) < 1e-4; });
    }
  }
}

TEST_CASE("dropout: gradient, keep rate and scaling", "[grad]") {
  std::mt19937 g(6);
  const int B = 5;
  const size_t per = 301;
  Vec x = random_vec(B * per, g);
  const Vec r = random_vec(B * per, g);
  Vec y(x.size()), dx(x.size());
  auto f = [&] {
    dropout_forward_cpu(y.data(), x.data(), 0.3f, 42, B, per, 7);
    return dot(y, r);
  };
  f();
  dropout_backward_cpu(dx.data(), r.data(), 0.3f, 42, B, per, 7);
  check_grad("dropout dx", x, dx, f);
  size_t kept = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (y[i] != 0) {
      ++kept;
      CHECK(y[i] == Approx(x[i] / 0.7));
    }
  }
  const double rate = double(kept) / double(x.size());
  CHECK(rate == Approx(0.7).margin(0.03));
  // The CPU loop draws four elements per Philox block (and a tail of 301 % 4):
  // each element's mask is still dropout_scale's, the definition the GPU uses.
  size_t differ = 0;
  for (int b = 0; b < B; ++b)
    for (size_t e = 0; e < per; ++e)
      differ += y[b * per + e] != x[b * per + e] * dropout_scale<double>(42, 7 + uint64_t(b), e, 0.3f);
  CHECK(differ == 0);
}

TEST_CASE("softmax cross-entropy: loss value and logit gradient, with and without label smoothing", "[grad]") {
  std::mt19937 g(7);
  const int B = 4, K = 7;
  Vec z = random_vec(size_t(B) * K, g, -4, 4);
  const std::vector<int32_t> labels{3, 0, 6, 2};
  for (const double eps : {0.0, 0.1, 0.35}) {
    INFO("label smoothing " << eps);
    Vec loss(B), dz(z.size());
    std::vector<int32_t> pred(B);
    auto f = [&] {
      softmax_xent_cpu<double>(nullptr, loss.data(), pred.data(), z.data(), labels.data(), B, K, 1.0, eps);
      double s = 0;
      for (double l : loss) s += l;
      return s / B;
    };
    softmax_xent_cpu(dz.data(), loss.data(), pred.data(), z.data(), labels.data(), B, K, 1.0 / B, eps);
    // Loss against the textbook formula, row 0: -sum_k q_k log p_k, q = (1 - eps) onehot(3) + eps / K.
    double se = 0;
    for (int k = 0; k < K; ++k) se += std::exp(z[k]);
    double want = 0;
    for (int k = 0; k < K; ++k) want -= ((k == 3 ? 1 - eps : 0) + eps / K) * (z[k] - std::log(se));
    CHECK(loss[0] == Approx(want).epsilon(1e-12));
    if (eps == 0) CHECK(loss[0] == Approx(std::log(se) - z[3]).epsilon(1e-12));
    CHECK(pred[0] == int(std::max_element(z.begin(), z.begin() + K) - z.begin()));
    check_grad("softmax-xent dz", z, dz, f);
  }
}

TEST_CASE("batch norm: gradients of input, scale and shift (training statistics)", "[grad]") {
  std::mt19937 g(7);
  for (const int HW : {1, 6}) {  // after a dense layer, after a convolution
    const int B = 4, C = 3;
    const size_t n = size_t(B) * C * HW;
    Vec x = random_vec(n, g, -1, 2), gamma = random_vec(C, g, 0.5, 1.5), beta = random_vec(C, g);
    const Vec r = random_vec(n, g);
    Vec y(n), saved(2 * C), dx(n), dgamma(C), dbeta(C);
    std::vector<double> sums(2 * C), local(2 * C);
    const BnParams p{true, double(B) * HW, 0.1, 1e-5};
    auto f = [&] {
      bn_sums_cpu(sums.data(), x.data(), (const double*)nullptr, (const double*)nullptr, B, C, HW);
      bn_forward_cpu(y.data(), x.data(), gamma.data(), beta.data(), saved.data(), nullptr, nullptr, sums.data(), p, B,
                     C, HW);
      return dot(y, r);
    };
    f();
    bn_sums_cpu(local.data(), r.data(), x.data(), saved.data(), B, C, HW);
    bn_backward_cpu(dx.data(), dgamma.data(), dbeta.data(), r.data(), x.data(), gamma.data(), saved.data(),
                    local.data(), local.data(), p, B, C, HW);
    INFO("HW " << HW);
    check_grad("bn dx", x, dx, f);
    check_grad("bn dgamma", gamma, dgamma, f);
    check_grad("bn dbeta", beta, dbeta, f);
  }
}
