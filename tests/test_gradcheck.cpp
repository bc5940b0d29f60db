// Finite-difference gradient checks of every layer family and the loss, on
// the CPU reference kernels in double precision, with small odd shapes.
// Objective: L = sum(y * r) for a fixed random r, so dL/dy = r.
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/kernels_cpu.h"

using namespace rs;
using Vec = std::vector<double>;

namespace {

Vec random_vec(size_t n, std::mt19937& g, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(n);
  for (double& x : v) x = u(g);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The largest |a[i] - r[i]|.
template <class A> double worst(const A& a, const Vec& r) {
  double m = 0;
  for (size_t i = 0; i < r.size(); ++i) m = std::max(m, std::abs(double(a[i]) - r[i]));
  return m;
}

// Compares analytic gradient `ana` of f with respect to `x` against central
// differences; elements where skip(i) is true (kinks) are not checked.
void check_grad(const char* what, Vec& x, const Vec& ana, const std::function<double()>& f,
                const std::function<bool(size_t)>& skip = nullptr) {
  const double eps = 1e-6;
  double worst = 0;
  size_t checked = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (skip && skip(i)) continue;
    const double keep = x[i];
    x[i] = keep + eps;
    const double fp = f();
    x[i] = keep - eps;
    const double fm = f();
    x[i] = keep;
    const double num = (fp - fm) / (2 * eps);
    const double err = std::abs(num - ana[i]) / std::max({std::abs(num), std::abs(ana[i]), 1e-2});
    worst = std::max(worst, err);
    ++checked;
  }
  INFO(what << ": worst relative error " << worst << " over " << checked << " elements");
  CHECK(checked > 0);
  CHECK(worst < 1e-6);
}

}  // namespace

TEST_CASE("dense: gradients of input, weight and bias", "[grad]") {
  std::mt19937 g(1);
  const int B = 3, IN = 7, OUT = 5;
  Vec x = random_vec(size_t(B) * IN, g), w = random_vec(size_t(OUT) * IN, g), b = random_vec(OUT, g);
  const Vec r = random_vec(size_t(B) * OUT, g);
  Vec y(r.size()), dx(x.size()), dw(w.size()), db(b.size());
  auto f = [&] {
    dense_forward_cpu(y.data(), x.data(), w.data(), b.data(), B, IN, OUT);
    return dot(y, r);
  };
  f();
  dense_backward_cpu(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), B, IN, OUT);
  check_grad("dense dx", x, dx, f);
  check_grad("dense dw", w, dw, f);
  check_grad("dense db", b, db, f);
}

TEST_CASE("dense: blocked products match direct loops, at any thread count", "[grad]") {
  // Shapes off every block size: rows off the 6-row pass, columns off the
  // vector width and the 64-column block, a layer narrower than the batch (the classifier's branch), din's 256-row
  // blocks of w (OUT > 256), the forward's k blocks (B = 100: 315 rows of
  // in^T), a forward batch OpenBLAS takes (B = 200). The backward by both
  // paths: the GEMMs, and the sparse loops over dout's non-zero values (dout
  // three quarters zero, as after ReLU and dropout; rows of w past its
  // 128-row blocks), which `automatic` takes for that dout. A range of dw's
  // rows alone, as the weight-gradient split computes them.
  struct Case {
    int B, IN, OUT;
  };
  for (const Case c : {Case{13, 70, 37}, Case{70, 1000, 9}, Case{5, 300, 301}, Case{64, 130, 64}, Case{100, 600, 300},
                       Case{200, 500, 250}})
    for (const GradPath path : {GradPath::gemm, GradPath::sparse, GradPath::automatic}) {
      DYNAMIC_SECTION("B" << c.B << " IN" << c.IN << " OUT" << c.OUT << " path " << int(path)) {
        std::mt19937 g(21);
        const Vec x = random_vec(size_t(c.B) * c.IN, g), w = random_vec(size_t(c.OUT) * c.IN, g),
                  b = random_vec(c.OUT, g);
        Vec dy = random_vec(size_t(c.B) * c.OUT, g);
        if (path != GradPath::gemm)  // the sparse loops see a sparse dout; the GEMMs a dense one
          for (double& v : dy) v = g() % 4 == 0 ? v : 0.0;
        Vec y_ref(dy.size()), dx_ref(x.size(), 0.0), dw_ref(w.size(), 0.0), db_ref(c.OUT, 0.0);
        for (int i = 0; i < c.B; ++i)
          for (int o = 0; o < c.OUT; ++o) {
            double acc = b[o];
            const double d = dy[size_t(i) * c.OUT + o];
            db_ref[o] += d;
            for (int k = 0; k < c.IN; ++k) {
              acc += x[size_t(i) * c.IN + k] * w[size_t(o) * c.IN + k];
              dx_ref[size_t(i) * c.IN + k] += d * w[size_t(o) * c.IN + k];
              dw_ref[size_t(o) * c.IN + k] += d * x[size_t(i) * c.IN + k];
            }
            y_ref[size_t(i) * c.OUT + o] = acc;
          }
        std::vector<Vec> runs;
        const int threads_before = omp_get_max_threads();
        for (int threads : {1, 2}) {
          omp_set_num_threads(threads);
          Vec y(dy.size(), 7.0), dx(x.size(), 7.0), dw(w.size(), 7.0), db(c.OUT, 7.0);  // overwritten
          dense_forward_cpu(y.data(), x.data(), w.data(), b.data(), c.B, c.IN, c.OUT);
          dense_backward_cpu(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), c.B, c.IN, c.OUT, path);
          INFO(threads << " threads");
          CHECK(worst(y, y_ref) < 1e-11);
          CHECK(worst(dx, dx_ref) < 1e-11);
          CHECK(worst(dw, dw_ref) < 1e-11);
          CHECK(worst(db, db_ref) < 1e-11);
          for (Vec* v : {&y, &dx, &dw, &db}) runs.push_back(*v);
          // rows [o0, o1) alone (the weight-gradient split): those of dw bit for bit, no other row written
          const int o0 = c.OUT / 3, o1 = c.OUT - c.OUT / 4;
          Vec rows(w.size(), 7.0);
          dense_weight_grad_cpu(rows.data() + size_t(o0) * c.IN, dy.data(), x.data(), c.B, c.IN, c.OUT, o0, o1, path);
          for (int o = 0; o < c.OUT; ++o) {
            const auto row = [&](const Vec& v) { return Vec(v.begin() + o * c.IN, v.begin() + (o + 1) * c.IN); };
            CHECK(row(rows) == (o >= o0 && o < o1 ? row(dw) : Vec(size_t(c.IN), 7.0)));
          }
        }
        omp_set_num_threads(threads_before);
        for (size_t i = 0; i < 4; ++i)  // bit-identical at 1 and 2 threads (OpenBLAS's forward: not promised)
          if (i > 0 || c.B < 128) CHECK(runs[i] == runs[i + 4]);
      }
    }
}

// A float weight gradient over 8 MB is written with streaming stores (on
// AVX-512, where dw and its rows sit on 64-byte lines; elsewhere plainly):
// the same values either way, checked against direct loops, with dw on and
// off the 64-byte lines, by both backward paths.
TEST_CASE("dense: a weight gradient past the caches matches direct loops", "[grad]") {
  const int B = 3, IN = 3136, OUT = 680;  // 8.5 MB of dw
  std::mt19937 g(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(size_t(B) * IN), dy(size_t(B) * OUT), w(size_t(OUT) * IN);
  for (auto* v : {&x, &dy, &w})
    for (float& f : *v) f = u(g);
  std::vector<double> dw_ref(w.size(), 0.0);
  for (int i = 0; i < B; ++i)
    for (int o = 0; o < OUT; ++o)
      for (int k = 0; k < IN; ++k)
        dw_ref[size_t(o) * IN + k] += double(dy[size_t(i) * OUT + o]) * x[size_t(i) * IN + k];
  for (const GradPath path : {GradPath::gemm, GradPath::sparse})
    for (size_t offset : {size_t(0), size_t(1)}) {
      std::vector<float> buf(w.size() + 32, 7.f), dx(x.size()), db(OUT);
      float* dw = buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) % 64 / 4) % 16 + offset;
      dense_backward_cpu(dx.data(), dw, db.data(), dy.data(), x.data(), w.data(), B, IN, OUT, path);
      double err = 0;
      for (size_t i = 0; i < w.size(); ++i) err = std::max(err, std::abs(dw[i] - dw_ref[i]));
      INFO("path " << int(path) << ", dw offset " << offset << " floats from a 64-byte line: largest error " << err);
      CHECK(err < 1e-5);
    }
}

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
