// The dense layer's CPU kernels: finite-difference gradients, the blocked
// products against direct loops at any thread count, a weight gradient past
// the caches.
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
