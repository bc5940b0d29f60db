// conv2d's CPU kernels: finite-difference gradients, batched lowering,
// Winograd and the sparse and GEMM backward paths against direct loops, the
// cache sizes the blocking reads.
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

TEST_CASE("conv2d: gradients with stride and padding", "[grad]") {
  struct Case {
    int B, C, H, W, OC, K, stride, pad;
  };
  for (const Case c : {Case{2, 3, 7, 5, 4, 3, 1, 1}, Case{3, 2, 9, 7, 3, 3, 2, 0}, Case{1, 1, 6, 6, 2, 5, 1, 2},
                       Case{2, 2, 5, 8, 3, 2, 3, 1}}) {
    DYNAMIC_SECTION("B" << c.B << " C" << c.C << " " << c.H << "x" << c.W << " OC" << c.OC << " K" << c.K << " s"
                        << c.stride << " p" << c.pad) {
      std::mt19937 g(2);
      ConvShape s{c.B,
                  c.C,
                  c.H,
                  c.W,
                  c.OC,
                  c.K,
                  c.stride,
                  c.pad,
                  (c.H + 2 * c.pad - c.K) / c.stride + 1,
                  (c.W + 2 * c.pad - c.K) / c.stride + 1};
      Vec x = random_vec(size_t(c.B) * c.C * c.H * c.W, g), w = random_vec(size_t(c.OC) * c.C * c.K * c.K, g),
          b = random_vec(c.OC, g);
      const Vec r = random_vec(size_t(c.B) * c.OC * s.OH * s.OW, g);
      Vec y(r.size()), dx(x.size()), dw(w.size()), db(b.size());
      auto f = [&] {
        conv2d_forward_cpu(y.data(), x.data(), w.data(), b.data(), s);
        return dot(y, r);
      };
      f();
      conv2d_backward_cpu(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), s);
      check_grad("conv dx", x, dx, f);
      check_grad("conv dw", w, dw, f);
      check_grad("conv db", b, db, f);
    }
  }
}

TEST_CASE("conv2d: forward matches a direct convolution", "[conv]") {
  std::mt19937 g(3);
  const ConvShape s{2, 3, 6, 5, 4, 3, 2, 1, 3, 3};
  Vec x = random_vec(size_t(2) * 3 * 6 * 5, g), w = random_vec(size_t(4) * 3 * 9, g), b = random_vec(4, g);
  Vec y(size_t(2) * 4 * 3 * 3);
  conv2d_forward_cpu(y.data(), x.data(), w.data(), b.data(), s);
  double worst = 0;
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 4; ++o)
      for (int oh = 0; oh < 3; ++oh)
        for (int ow = 0; ow < 3; ++ow) {
          double acc = b[o];
          for (int c = 0; c < 3; ++c)
            for (int kh = 0; kh < 3; ++kh)
              for (int kw = 0; kw < 3; ++kw) {
                const int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
                if (ih < 0 || ih >= 6 || iw < 0 || iw >= 5) continue;
                acc += w[((o * 3 + c) * 3 + kh) * 3 + kw] * x[((n * 3 + c) * 6 + ih) * 5 + iw];
              }
          worst = std::max(worst, std::abs(acc - y[((n * 4 + o) * 3 + oh) * 3 + ow]));
        }
  CHECK(worst < 1e-12);
}

TEST_CASE("cpu caches: the sizes the kernels block for", "[conv]") {
  // Read once from sysfs (else sysconf, else assumed): an L1d and an L2 of
  // plausible sizes, in order, and the same object on every call.
  const CacheSizes& c = cpu_caches();
  INFO("source " << c.source << ", L1d " << c.l1d << ", L2 " << c.l2 << ", L3 share " << c.l3_share);
  CHECK(std::string(c.source).size() > 0);
  CHECK(c.l1d >= (size_t(4) << 10));
  CHECK(c.l2 >= c.l1d);
  CHECK(c.l2 <= (size_t(1) << 30));
  CHECK(&cpu_caches() == &c);
}

TEST_CASE("conv2d: batched lowering, Winograd and both backward paths match direct loops", "[conv]") {
  // Batches larger than a lowering group (with a partial last group), odd
  // shapes, stride and padding; dy 75% zeros as after ReLU and a 2x2 pool.
  // Winograd (stride 1, 3x3 and 5x5): partial tiles at odd output sizes, more
  // tiles than a block (44x40 in 4x4 tiles, 28x28 in 2x2), channel counts off
  // the vector width (9, 17, 11) and past four vectors (40), >= 16 input
  // channels (taken automatically), several samples' tiles in one block.
  for (const ConvShape s0 : {ConvShape{11, 3, 9, 7, 5, 3, 1, 1, 0, 0}, ConvShape{5, 4, 10, 11, 3, 5, 2, 2, 0, 0},
                             ConvShape{9, 6, 8, 8, 4, 3, 1, 0, 0, 0}, ConvShape{3, 1, 44, 40, 2, 5, 1, 2, 0, 0},
                             ConvShape{2, 1, 28, 28, 2, 3, 1, 1, 0, 0}, ConvShape{4, 2, 7, 6, 3, 2, 3, 1, 0, 0},
                             ConvShape{2, 9, 7, 9, 40, 5, 1, 2, 0, 0}, ConvShape{3, 17, 6, 5, 11, 3, 1, 0, 0, 0},
                             ConvShape{2, 16, 14, 14, 32, 5, 1, 2, 0, 0}}) {
    ConvShape s = s0;
    s.OH = (s.H + 2 * s.pad - s.K) / s.stride + 1, s.OW = (s.W + 2 * s.pad - s.K) / s.stride + 1;
    DYNAMIC_SECTION("B" << s.B << " C" << s.C << " " << s.H << "x" << s.W << " OC" << s.OC << " K" << s.K << " s"
                        << s.stride << " p" << s.pad) {
      std::mt19937 g(9);
      const size_t nx = size_t(s.B) * s.C * s.H * s.W, ny = size_t(s.B) * s.OC * s.OH * s.OW;
      const Vec x = random_vec(nx, g), w = random_vec(size_t(s.OC) * s.C * s.K * s.K, g), b = random_vec(s.OC, g);
      Vec dy = random_vec(ny, g);
      for (size_t i = 0; i < ny; ++i)
        if (g() % 4) dy[i] = 0;
      // direct loops: y, and dx, dw, db for this dy
      Vec y_ref(ny), dx_ref(nx, 0.0), dw_ref(w.size(), 0.0), db_ref(s.OC, 0.0);
      for (int n = 0; n < s.B; ++n)
        for (int o = 0; o < s.OC; ++o)
          for (int oh = 0; oh < s.OH; ++oh)
            for (int ow = 0; ow < s.OW; ++ow) {
              const size_t yi = ((size_t(n) * s.OC + o) * s.OH + oh) * s.OW + ow;
              double acc = b[o];
              db_ref[o] += dy[yi];
              for (int c = 0; c < s.C; ++c)
                for (int kh = 0; kh < s.K; ++kh)
                  for (int kw = 0; kw < s.K; ++kw) {
                    const int ih = oh * s.stride - s.pad + kh, iw = ow * s.stride - s.pad + kw;
                    if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                    const size_t xi = ((size_t(n) * s.C + c) * s.H + ih) * s.W + iw;
                    const size_t wi = ((size_t(o) * s.C + c) * s.K + kh) * s.K + kw;
                    acc += w[wi] * x[xi];
                    dx_ref[xi] += w[wi] * dy[yi];
                    dw_ref[wi] += x[xi] * dy[yi];
                  }
              y_ref[yi] = acc;
            }
      for (FwdPath path : {FwdPath::gemm, FwdPath::winograd, FwdPath::automatic}) {
        if (path == FwdPath::winograd && !winograd_applies(s)) continue;
        Vec y(ny, 7.0);
        conv2d_forward_cpu(y.data(), x.data(), w.data(), b.data(), s, path);
        INFO("forward path " << int(path));
        CHECK(worst(y, y_ref) < (path == FwdPath::gemm ? 1e-12 : 1e-10));  // Winograd: transforms round
      }
      for (GradPath path : {GradPath::gemm, GradPath::sparse, GradPath::winograd, GradPath::automatic}) {
        if (path == GradPath::winograd && !winograd_applies(s)) continue;
        const double tol = path == GradPath::gemm || path == GradPath::sparse ? 1e-12 : 1e-10;
        Vec dx(nx, 7.0), dw(w.size(), 7.0), db(s.OC, 7.0);  // overwritten, not accumulated
        conv2d_backward_cpu(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), s, path);
        INFO("path " << int(path));
        CHECK(worst(dx, dx_ref) < tol);
        CHECK(worst(dw, dw_ref) < 1e-12);
        CHECK(worst(db, db_ref) < 1e-12);
        conv2d_backward_cpu<double>(nullptr, dw.data(), db.data(), dy.data(), x.data(), w.data(), s, path);
        CHECK(worst(dw, dw_ref) < 1e-12);
      }
    }
  }
}

TEST_CASE("conv2d: Winograd in float stays within 2e-5 of the exact result", "[conv]") {
  // tf-mnist-cnn's conv2 (32 -> 64 channels, 5x5, 14x14, padding 2; F(4x4, 5x5)): the transforms'
  // rounding, measured at ~7e-6 of the largest value (GEMM path ~3e-7); a wrong coefficient gives
  // ~1e-1. Then odd shapes through the float-only code (AVX-512: 16 x 16 transposes to and from
  // channels-last): rows wider than 16, channel counts off 16, batches cut into uneven chunks.
  for (const ConvShape s0 : {ConvShape{13, 32, 14, 14, 64, 5, 1, 2, 0, 0}, ConvShape{3, 17, 28, 21, 11, 5, 1, 2, 0, 0},
                             ConvShape{7, 9, 7, 9, 40, 3, 1, 1, 0, 0}, ConvShape{13, 16, 6, 5, 18, 5, 1, 0, 0, 0}}) {
    ConvShape s = s0;
    s.OH = s.H + 2 * s.pad - s.K + 1, s.OW = s.W + 2 * s.pad - s.K + 1;
    DYNAMIC_SECTION("B" << s.B << " C" << s.C << " " << s.H << "x" << s.W << " OC" << s.OC << " K" << s.K) {
      std::mt19937 g(11);
      const size_t nx = size_t(s.B) * s.C * s.H * s.W, ny = size_t(s.B) * s.OC * s.OH * s.OW;
      Vec x = random_vec(nx, g), w = random_vec(size_t(s.OC) * s.C * s.K * s.K, g), b = random_vec(s.OC, g),
          dy = random_vec(ny, g);
      Vec y(ny), dx(nx), dw(w.size()), db(s.OC);
      conv2d_forward_cpu(y.data(), x.data(), w.data(), b.data(), s, FwdPath::gemm);
      conv2d_backward_cpu(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), s, GradPath::gemm);
      auto to_float = [](const Vec& v) { return std::vector<float>(v.begin(), v.end()); };
      std::vector<float> xf = to_float(x), wf = to_float(w), bf = to_float(b), dyf = to_float(dy);
      std::vector<float> yf(ny), dxf(nx), dwf(w.size()), dbf(s.OC);
      conv2d_forward_cpu(yf.data(), xf.data(), wf.data(), bf.data(), s, FwdPath::winograd);
      conv2d_backward_cpu(dxf.data(), dwf.data(), dbf.data(), dyf.data(), xf.data(), wf.data(), s, GradPath::winograd);
      auto rel = [](const std::vector<float>& a, const Vec& r) {
        return worst(a, r) / worst(Vec(r.size(), 0.0), r);  // of the largest |r|
      };
      CHECK(rel(yf, y) < 2e-5);
      CHECK(rel(dxf, dx) < 2e-5);
      CHECK(rel(dwf, dw) < 2e-5);
      CHECK(rel(dbf, db) < 1e-6);
    }
  }
}
