// Optimizer steps against the machine's memory bandwidth (not a test: run by
// jobs/bench-optimizer.sh). For 1 and every thread count up to
// OMP_NUM_THREADS it times, on N parameters (default: tf-mnist-cnn's):
//   - the bound: a pass with Adam's memory traffic and no arithmetic (read
//     p, g, m, v; write p, m, v), and SGD-with-momentum's (read p, g, v;
//     write p, v), as GB/s and ms per step;
//   - the Adam, AdamW and SGD steps as ms per step, and their ratio to the bound;
//   - Adam with 22% of its moments denormal floats (units whose gradient is
//     zero), with denormals flushed to zero (FTZ/DAZ, as ranksweep runs) and
//     without (the x86 default), to show what the flush is for.
// Each figure is the median of R steps after one warm-up step.
//
// With `paths` last: the conv2 and dense1 layer paths (forward, and each
// backward path; sparse ones by the density of the output gradient) instead.
//
// usage: bench_kernels [--params N] [--reps R] [paths]
#include <fmt/format.h>
#include <omp.h>

#if defined(__SSE3__)
#include <pmmintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/kernels_cpu.h"
#include "kernels/simd_cpu.h"

using namespace rs;

namespace {

double median_ms(int reps, const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void set_flush(bool on) {
#if defined(__SSE3__)
#pragma omp parallel
  {
    _MM_SET_FLUSH_ZERO_MODE(on ? _MM_FLUSH_ZERO_ON : _MM_FLUSH_ZERO_OFF);
    _MM_SET_DENORMALS_ZERO_MODE(on ? _MM_DENORMALS_ZERO_ON : _MM_DENORMALS_ZERO_OFF);
  }
#else
  (void)on;
#endif
}

struct Arrays {
  std::vector<float> p, g, m, v;
  explicit Arrays(size_t n) : p(n), g(n), m(n), v(n) {
    for (size_t i = 0; i < n; ++i) {
      p[i] = 0.01f * float(i % 97) - 0.5f;
      g[i] = 1e-3f * float(i % 89) - 0.04f;
      m[i] = 1e-4f * float(i % 83);
      v[i] = 1e-7f * float(i % 79) + 1e-9f;
    }
  }
};

}  // namespace

// tf-mnist-cnn's conv2 and dense1 at batch 64: each backward path, the sparse
// ones at several densities of dout (random positions), in us per image.
int paths(int reps) {
  using Buf = simd::Buffer<float>;  // on cache lines, as the CPU backend's tensors
  const int B = 64;
  ConvShape s{B, 32, 14, 14, 64, 5, 1, 2, 14, 14};
  Buf in(size_t(B) * 32 * 196), w(64 * 32 * 25), b(64), out(size_t(B) * 64 * 196), din(in.size()),
      dw(w.size()), db(64), dout(out.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 13) * 0.1f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i % 7) * 0.01f - 0.03f;
  auto fill = [](Buf& x, double density) {
    uint64_t r = 12345;
    for (float& v : x) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      v = double(r >> 11) / 9007199254740992.0 < density ? 0.5f : 0.f;
    }
  };
  auto us = [&](const std::function<void()>& f) { return median_ms(reps, f) * 1000 / B; };
  fmt::print("conv2 (32->64, 5x5, 14x14), batch {}, us per image\n", B);
  fmt::print("  forward: winograd {:.1f}, gemm {:.1f}\n",
             us([&] { conv2d_forward_cpu(out.data(), in.data(), w.data(), b.data(), s, FwdPath::winograd); }),
             us([&] { conv2d_forward_cpu(out.data(), in.data(), w.data(), b.data(), s, FwdPath::gemm); }));
  fill(dout, 0.2);
  auto back = [&](GradPath p) {
    return us([&] { conv2d_backward_cpu(din.data(), dw.data(), db.data(), dout.data(), in.data(), w.data(), s, p); });
  };
  const double wgrad = us([&] { conv2d_winograd_weight_grad_cpu(dw.data(), db.data(), dout.data(), in.data(), s); });
  fmt::print("  backward: winograd {:.1f} (weight gradient {:.1f}), gemm {:.1f}; sparse at density",
             back(GradPath::winograd), wgrad, back(GradPath::gemm));
  for (double d : {0.05, 0.08, 0.11, 0.15, 0.2, 0.25}) {
    fill(dout, d);
    fmt::print(" {:.0f}%: {:.1f}", d * 100, back(GradPath::sparse));
  }
  const int IN = 3136, OUT = 1024;
  Buf x(size_t(B) * IN), wd(size_t(OUT) * IN), bd(OUT), y(size_t(B) * OUT), dx(x.size()), dwd(wd.size()),
      dbd(OUT), dy(y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 11) * 0.1f;
  for (size_t i = 0; i < wd.size(); ++i) wd[i] = float(i % 5) * 0.01f;
  auto dback = [&](GradPath p) {
    return us(
        [&] { dense_backward_cpu(dx.data(), dwd.data(), dbd.data(), dy.data(), x.data(), wd.data(), B, IN, OUT, p); });
  };
  fmt::print("\ndense1 (3136->1024), batch {}, us per image\n  forward {:.1f}\n", B,
             us([&] { dense_forward_cpu(y.data(), x.data(), wd.data(), bd.data(), B, IN, OUT); }));
  fill(dy, 0.5);
  fmt::print("  backward: gemm {:.1f}; sparse at density", dback(GradPath::gemm));
  for (double d : {0.1, 0.2, 0.3, 0.4, 0.5}) {
    fill(dy, d);
    fmt::print(" {:.0f}%: {:.1f}", d * 100, dback(GradPath::sparse));
  }
  fmt::print("\n");
  return 0;
}

int main(int argc, char** argv) {
  size_t n = 3274634;  // tf-mnist-cnn: conv 832 + 51264, dense 3212288 + 10250
  int reps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--params")) n = std::stoul(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::stoi(argv[i + 1]);
  }
  if (argc > 1 && !std::strcmp(argv[argc - 1], "paths")) return paths(std::min(reps, 20));
  const int max_threads = omp_get_max_threads();
  fmt::print("{} parameters ({:.1f} MB per array), median of {} steps\n", n, double(n) * 4 / 1e6, reps);
  fmt::print("{:>7} {:>22} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9} {:>7} {:>14} {:>14}\n", "threads", "bound adam/sgd GB/s",
             "bound ms", "adam ms", "ratio", "adamw ms", "ratio", "sgd ms", "ratio", "denorm ftz ms", "denorm off ms");
  for (int threads = 1; threads <= max_threads; threads = threads == max_threads ? threads + 1 : max_threads) {
    omp_set_num_threads(threads);
    set_flush(true);
    Arrays a(n);
    float* p = a.p.data();
    float* g = a.g.data();
    float* m = a.m.data();
    float* v = a.v.data();
    // Adam's traffic without its arithmetic: 4 arrays read, 3 written.
    const double bound_adam = median_ms(reps, [&] {
#pragma omp parallel for simd schedule(static)
      for (size_t i = 0; i < n; ++i) {
        const float x = g[i];
        p[i] += x, m[i] += x, v[i] += x;
      }
    });
    const double bound_sgd = median_ms(reps, [&] {
#pragma omp parallel for simd schedule(static)
      for (size_t i = 0; i < n; ++i) {
        const float x = g[i];
        p[i] += x, v[i] += x;
      }
    });
    Arrays b(n);
    AdamParams o{1e-4f, 0.9f, 0.999f, 1e-8f, 0.f, false, 0.5f, 0.01f};
    const double adam = median_ms(reps, [&] { adam_update_cpu(b.p.data(), b.m.data(), b.v.data(), b.g.data(), n, o); });
    Arrays c(n);
    AdamParams ow = o;
    ow.decoupled = true, ow.weight_decay = 0.01f;
    const double adamw =
        median_ms(reps, [&] { adam_update_cpu(c.p.data(), c.m.data(), c.v.data(), c.g.data(), n, ow); });
    Arrays d(n);
    const SgdParams os{0.01f, 0.9f, 0.f, false};
    const double sgd = median_ms(reps, [&] { sgd_update_cpu(d.p.data(), d.v.data(), d.g.data(), n, os); });
    // 22% of the moments denormal and their gradients zero: rewritten before
    // every step (outside the timing), so they stay denormal.
    auto denormal = [&](bool flush) {
      Arrays e(n);
      std::vector<double> t;
      for (int r = 0; r <= reps; ++r) {
        set_flush(true);
        for (size_t i = 0; i < n; i += 9)
          for (size_t k = i; k < std::min(n, i + 2); ++k) e.g[k] = 0.f, e.m[k] = 3e-39f, e.v[k] = 0.f;
        set_flush(flush);
        const auto t0 = std::chrono::steady_clock::now();
        adam_update_cpu(e.p.data(), e.m.data(), e.v.data(), e.g.data(), n, o);
        if (r) t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      set_flush(true);
      std::sort(t.begin(), t.end());
      return t[t.size() / 2];
    };
    const double den_on = denormal(true), den_off = denormal(false);
    const double bytes_adam = 7.0 * 4 * double(n), bytes_sgd = 5.0 * 4 * double(n);
    fmt::print(
        "{:>7} {:>11.1f}/{:<10.1f} {:>9.2f} {:>9.2f} {:>6.2f}x {:>9.2f} {:>6.2f}x {:>9.2f} {:>6.2f}x {:>14.2f} "
        "{:>14.2f}\n",
        threads, bytes_adam / bound_adam / 1e6, bytes_sgd / bound_sgd / 1e6, bound_adam, adam, adam / bound_adam, adamw,
        adamw / bound_adam, sgd, sgd / bound_sgd, den_on, den_off);
  }
  fmt::print(
      "ratio: step time / the bound (the same memory traffic without arithmetic); sgd's bound is its own "
      "(5 arrays)\n");
  return 0;
}
