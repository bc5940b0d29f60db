// The hand-written CUDA kernels (kernels/*.cu), built for the host and run
// under the emulated CUDA runtime (tests/emu), against the CPU reference
// (kernels/*_cpu.cpp) on odd sizes and on the models' shapes. The grid is
// clamped to a few blocks so that every grid-stride loop wraps, and the
// emulator runs each launch twice (threads of a block in ascending, then
// descending order) and fails a launch whose results differ. Built with ASan
// and UBSan. cuDNN, NCCL, streams and pinned memory are not emulated: the
// convolutions, allreduce and load_batch pipelining stay [gpu] tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "compare.h"
#include "kernels/kernels_gpu.h"
#include "kernels/launch.cuh"

using namespace rs;
using namespace rs::test;

namespace {

// What the fatal-error handler throws here (the program's handler aborts the job).
struct Fatal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Device memory of the emulator: host memory the test reads and writes directly.
template <class T> struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(T)) == cudaSuccess);
  }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { std::copy(h.begin(), h.end(), p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { cudaFree(p); }
  operator T*() const { return p; }
  std::vector<T> host() const { return std::vector<T>(p, p + n); }
};

template <class T> void check_close(const std::string& what, const std::vector<T>& ref, const Dev<T>& got,
                                    double atol = 1e-6, double rtol = 1e-5) {
  REQUIRE(ref.size() == got.n);
  const Mismatch m = mismatch(ref.data(), got.p, ref.size(), atol, rtol);
  INFO(m.describe(what));
  CHECK(m.bad == 0);
}

// Run the body with the grid clamped to 3 blocks (loops wrap) and unclamped.
template <class F> void for_grid_limits(F&& body) {
  const unsigned saved = grid_limit();
  for (unsigned lim : {3u, saved}) {
    grid_limit() = lim;
    INFO("grid limit " << lim);
    body();
  }
  grid_limit() = saved;
}

const GpuContext& ctx() {
  static GpuContext c = [] {
    GpuContext g;
    REQUIRE(cublasCreate(&g.cublas) == CUBLAS_STATUS_SUCCESS);
    return g;
  }();
  return c;
}

PoolShape pool_shape(int B, int C, int H, int W, int K, int stride, int pad) {
  return {B, C, H, W, K, stride, pad, (H + 2 * pad - K) / stride + 1, (W + 2 * pad - K) / stride + 1};
}

}  // namespace

TEST_CASE("dense layer: cuBLAS products and bias kernels", "[emu]") {
  // odd sizes, then the MLP's first layer and the CNN's dense layers
  for (const auto [B, IN, OUT] : {std::tuple{7, 13, 5}, std::tuple{5, 784, 300}, std::tuple{3, 3136, 1024},
                                  std::tuple{3, 1024, 10}, std::tuple{0, 4, 3}}) {
    INFO("B " << B << " IN " << IN << " OUT " << OUT);
    const auto x = random_vec(size_t(B) * IN, 1), w = random_vec(size_t(OUT) * IN, 2), b = random_vec(OUT, 3),
               dy = random_vec(size_t(B) * OUT, 4);
    std::vector<float> y(size_t(B) * OUT), dx(size_t(B) * IN), dw(size_t(OUT) * IN), db(OUT);
    dense_forward_cpu(y.data(), x.data(), w.data(), b.data(), B, IN, OUT);
    dense_backward_cpu(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), B, IN, OUT);
    for_grid_limits([&] {
      Dev<float> gx(x), gw(w), gb(b), gdy(dy), gy(y.size()), gdx(dx.size()), gdw(dw.size()), gdb(db.size());
      dense_forward_gpu(gy, gx, gw, gb, B, IN, OUT, ctx());
      dense_backward_gpu(gdx, gdw, gdb, gdy, gx, gw, B, IN, OUT, ctx());
      // Float sums of up to 3136 products in different orders (cuBLAS's, the CPU kernel's blocks):
      // rounding ~ sqrt(3136) x 6e-8 x |sum| ~ 1e-4 at these sizes, seen 8.8e-5.
      check_close("dense y", y, gy, 3e-4, 1e-5), check_close("dense dx", dx, gdx, 3e-4, 1e-5);
      check_close("dense dw", dw, gdw, 3e-4, 1e-5), check_close("dense db", db, gdb, 1e-5, 1e-5);
    });
  }
}

TEST_CASE("convolution bias: add and gradient over (N, C, HW)", "[emu]") {
  for (const auto [N, C, HW] : {std::tuple{3, 5, size_t(7)}, std::tuple{4, 32, size_t(28 * 28)},
                                std::tuple{2, 64, size_t(14 * 14)}, std::tuple{1, 3, size_t(1000)}}) {
    INFO("N " << N << " C " << C << " HW " << HW);
    const size_t n = size_t(N) * C * HW;
    const auto out0 = random_vec(n, 5), b = random_vec(C, 6), dout = random_vec(n, 7);
    std::vector<float> out = out0, db(C, 0.f);
    for (size_t i = 0; i < n; ++i) out[i] += b[i / HW % C], db[i / HW % C] += dout[i];
    for_grid_limits([&] {
      Dev<float> go(out0), gb(b), gdout(dout), gdb(C);
      bias_add_gpu(go, gb, N, C, HW, nullptr);
      bias_grad_gpu(gdb, gdout, N, C, HW, nullptr);
      check_close("bias add", out, go), check_close("bias grad", db, gdb, 1e-4, 1e-5);
    });
  }
}

TEST_CASE("max-pool forward and backward", "[emu]") {
  // 2x2 stride 2 (the CNN's), overlapping 3x3 stride 2 pad 1, stride 1, odd planes
  for (const PoolShape s : {pool_shape(2, 32, 28, 28, 2, 2, 0), pool_shape(3, 4, 9, 7, 3, 2, 1),
                            pool_shape(2, 3, 5, 6, 3, 1, 1), pool_shape(1, 2, 7, 7, 2, 2, 0)}) {
    INFO("pool " << s.K << "x" << s.K << " stride " << s.stride << " pad " << s.pad << " on " << s.H << "x" << s.W);
    const size_t nin = size_t(s.B) * s.C * s.H * s.W, nout = size_t(s.B) * s.C * s.OH * s.OW;
    const auto x = random_vec(nin, 9), dy = random_vec(nout, 10);
    std::vector<float> y(nout), dx(nin);
    std::vector<int32_t> am(nout);
    maxpool_forward_cpu(y.data(), am.data(), x.data(), s);
    maxpool_backward_cpu(dx.data(), dy.data(), am.data(), s);
    for_grid_limits([&] {
      Dev<float> gx(x), gdy(dy), gy(nout), gdx(nin);
      Dev<int32_t> gam(nout);
      maxpool_forward_gpu(gy, gam, gx, s, nullptr);
      maxpool_backward_gpu(gdx, gdy, gam, s, nullptr);
      check_close("maxpool y", y, gy, 0, 0), check_close("maxpool argmax", am, gam, 0, 0);
      check_close("maxpool dx", dx, gdx, 1e-6, 1e-6);
    });
  }
}

TEST_CASE("activations and dropout", "[emu]") {
  for (const size_t n : {size_t(1), size_t(1001), size_t(5000)}) {
    INFO("n " << n);
    const auto x = random_vec(n, 11, -3, 3), dy = random_vec(n, 12);
    for (const ActInfo& info : kActivations) {
      const Act a = info.act;
      INFO("activation " << info.name);
      std::vector<float> y(n), dx(n);
      activation_forward_cpu(a, y.data(), x.data(), n);
      activation_backward_cpu(a, dx.data(), dy.data(), x.data(), y.data(), n);
      for_grid_limits([&] {
        Dev<float> gx(x), gdy(dy), gy(n), gdx(n);
        activation_forward_gpu(a, gy, gx, n, nullptr);
        activation_backward_gpu(a, gdx, gdy, gx, gy, n, nullptr);
        check_close("activation y", y, gy), check_close("activation dx", dx, gdx);
      });
    }
  }
  const int B = 7;
  const size_t per = 143, n = B * per;
  const auto x = random_vec(n, 13), dy = random_vec(n, 14);
  std::vector<float> y(n), dx(n);
  dropout_forward_cpu(y.data(), x.data(), 0.3f, 77, B, per, 1000);
  dropout_backward_cpu(dx.data(), dy.data(), 0.3f, 77, B, per, 1000);
  for_grid_limits([&] {
    Dev<float> gx(x), gdy(dy), gy(n), gdx(n);
    dropout_forward_gpu(gy, gx, 0.3f, 77, B, per, 1000, nullptr);
    dropout_backward_gpu(gdx, gdy, 0.3f, 77, B, per, 1000, nullptr);
    check_close("dropout y", y, gy, 0, 0), check_close("dropout dx", dx, gdx, 0, 0);
  });
}

TEST_CASE("softmax cross-entropy: training (gradient) and evaluation paths, several blocks", "[emu]") {
  for (const auto [B, K] : {std::tuple{37, 11}, std::tuple{600, 10}, std::tuple{257, 3}}) {
    for (const float eps : {0.f, 0.1f}) {
      INFO("B " << B << " K " << K << " label smoothing " << eps);
      const auto z = random_vec(size_t(B) * K, 15, -5, 5);
      std::vector<int32_t> labels(B);
      for (int b = 0; b < B; ++b) labels[b] = (b * 7) % K;
      std::vector<float> dz(z.size()), loss(B);
      std::vector<int32_t> pred(B);
      softmax_xent_cpu(dz.data(), loss.data(), pred.data(), z.data(), labels.data(), B, K, 1.f / B, eps);
      std::vector<double> metrics{0.5, 2};  // the kernels add to what is there
      for (int b = 0; b < B; ++b) metrics[0] += loss[b], metrics[1] += pred[b] == labels[b];
      for (const bool train : {true, false}) {
        INFO((train ? "with" : "without") << " gradient");
        Dev<float> gz(z), gdz(z.size());
        Dev<int32_t> gl(labels);
        Dev<double> gm(std::vector<double>{0.5, 2});
        softmax_xent_gpu(train ? gdz.p : nullptr, gz, gl, B, K, 1.f / B, eps, gm, nullptr);
        check_close("loss sum and correct count", metrics, gm, 1e-6, 1e-6);
        if (train) check_close("dlogits", dz, gdz);
        if (!train) CHECK(std::all_of(gdz.p, gdz.p + gdz.n, [](float v) { return std::isnan(v); }));  // untouched
      }
    }
  }
}

TEST_CASE("optimizers over several steps: SGD, momentum, Nesterov, Adam, AdamW", "[emu]") {
  const size_t n = 2053;
  for (int variant = 0; variant < 5; ++variant) {
    INFO("variant " << variant);
    std::vector<float> p = random_vec(n, 16), v = random_vec(n, 17), m = random_vec(n, 18, 0, 1);
    Dev<float> gp(p), gv(v), gm(m);
    for (int step = 1; step <= 4; ++step) {
      const auto g = random_vec(n, 100 + step);
      Dev<float> gg(g);
      if (variant < 3) {
        const SgdParams o{0.1f, variant == 0 ? 0.f : 0.9f, 0.01f, variant == 2};
        sgd_update_cpu(p.data(), v.data(), g.data(), n, o);
        sgd_update_gpu(gp, variant == 0 ? nullptr : gv.p, gg, n, o, nullptr);
      } else {
        const float b1 = 0.9f, b2 = 0.999f;
        const AdamParams o{0.01f,
                           b1,
                           b2,
                           1e-8f,
                           0.01f,
                           variant == 4,
                           1.f - std::pow(b1, float(step)),
                           1.f - std::pow(b2, float(step))};
        adam_update_cpu(p.data(), v.data(), m.data(), g.data(), n, o);
        adam_update_gpu(gp, gv, gm, gg, n, o, nullptr);
      }
    }
    check_close("parameters", p, gp), check_close("first moment / velocity", v, gv);
    check_close("second moment", m, gm);
  }
}

TEST_CASE("batch conversion: uint8 and float samples, with and without augmentation", "[emu]") {
  const int N = 20, C = 3, H = 5, W = 4, B = 7;
  const size_t per = size_t(C) * H * W;
  std::vector<uint8_t> u8(N * per);
  for (size_t i = 0; i < u8.size(); ++i) u8[i] = uint8_t(i * 37);
  const std::vector<float> f32(u8.begin(), u8.end());
  const std::vector<int64_t> idx{19, 3, 3, 0, 11, 7, 2};
  const float mean[C] = {0.1f, 0.5f, 0.9f}, inv_std[C] = {2.f, 3.f, 4.f};
  const std::vector<float> norm{0.1f, 0.5f, 0.9f, 2.f, 3.f, 4.f};
  auto gather = [&](const auto& data) {  // what load_batch uploads: the batch's samples in order
    std::vector<typename std::decay_t<decltype(data)>::value_type> g;
    for (int64_t i : idx) g.insert(g.end(), data.begin() + i * per, data.begin() + (i + 1) * per);
    return g;
  };
  for (const auto [pad, flip] : {std::pair{0, false}, std::pair{2, true}, std::pair{1, false}}) {
    INFO("pad " << pad << " flip " << flip);
    std::vector<float> ref_u8(B * per), ref_f32(B * per);
    if (pad == 0 && !flip) {
      gather_normalize_cpu(ref_u8.data(), u8.data(), idx.data(), B, C, H * W, mean, inv_std);
      gather_normalize_cpu(ref_f32.data(), f32.data(), idx.data(), B, C, H * W, mean, inv_std);
    } else {
      gather_augment_cpu(ref_u8.data(), u8.data(), idx.data(), B, C, H, W, mean, inv_std, pad, flip, 99);
      gather_augment_cpu(ref_f32.data(), f32.data(), idx.data(), B, C, H, W, mean, inv_std, pad, flip, 99);
    }
    for_grid_limits([&] {
      Dev<uint8_t> gu(gather(u8));
      Dev<float> gf(gather(f32)), gn(norm), out_u8(B * per), out_f32(B * per);
      Dev<int64_t> gi(idx);
      if (pad == 0 && !flip) {
        normalize_gpu(out_u8, gu, B, C, H * W, gn, gn + C, nullptr);
        normalize_gpu(out_f32, gf, B, C, H * W, gn, gn + C, nullptr);
      } else {
        augment_normalize_gpu(out_u8, gu, gi, B, C, H, W, gn, gn + C, pad, flip, 99, nullptr);
        augment_normalize_gpu(out_f32, gf, gi, B, C, H, W, gn, gn + C, pad, flip, 99, nullptr);
      }
      check_close("uint8 batch", ref_u8, out_u8), check_close("float batch", ref_f32, out_f32);
    });
  }
}

TEST_CASE("batch normalisation: sums, statistics, running estimates, gradients, inference", "[emu]") {
  for (const auto [B, C, HW] : {std::tuple{5, 3, size_t(1)}, std::tuple{5, 3, size_t(42)},
                                std::tuple{4, 32, size_t(784)}, std::tuple{2, 300, size_t(1)}}) {
    INFO("B " << B << " C " << C << " HW " << HW);
    const size_t n = size_t(B) * C * HW;
    const auto x = random_vec(n, 21, -2, 3), dy = random_vec(n, 22), gamma = random_vec(C, 23, 0.5, 1.5),
               beta = random_vec(C, 24);
    const BnParams train{true, double(B) * HW, 0.1, 1e-5}, eval{false, double(B) * HW, 0.1, 1e-5};
    std::vector<double> sums(2 * C), local(2 * C);
    std::vector<float> y(n), dx(n), ye(n), dgamma(C), dbeta(C), saved(2 * C), rmean(C, 0.f), rvar(C, 1.f);
    bn_sums_cpu(sums.data(), x.data(), (const float*)nullptr, (const float*)nullptr, B, C, HW);
    bn_forward_cpu(y.data(), x.data(), gamma.data(), beta.data(), saved.data(), rmean.data(), rvar.data(), sums.data(),
                   train, B, C, HW);
    bn_sums_cpu(local.data(), dy.data(), x.data(), saved.data(), B, C, HW);
    bn_backward_cpu(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), gamma.data(), saved.data(),
                    local.data(), local.data(), train, B, C, HW);
    bn_forward_cpu(ye.data(), x.data(), gamma.data(), beta.data(), saved.data(), rmean.data(), rvar.data(),
                   (const double*)nullptr, eval, B, C, HW);
    for_grid_limits([&] {
      Dev<float> gx(x), gdy(dy), gg(gamma), gb(beta), gy(n), gdx(n), gye(n), gdg(C), gdb(C), gs(2 * C);
      Dev<float> grm(std::vector<float>(C, 0.f)), grv(std::vector<float>(C, 1.f));
      Dev<double> gsums(2 * C), glocal(2 * C);
      bn_sums_gpu(gsums, gx, nullptr, nullptr, B, C, HW, nullptr);
      bn_forward_gpu(gy, gx, gg, gb, gs, grm, grv, gsums, train, B, C, HW, nullptr);
      bn_sums_gpu(glocal, gdy, gx, gs, B, C, HW, nullptr);
      bn_backward_gpu(gdx, gdg, gdb, gdy, gx, gg, gs, glocal, glocal, train, B, C, HW, nullptr);
      bn_forward_gpu(gye, gx, gg, gb, gs, grm, grv, nullptr, eval, B, C, HW, nullptr);
      check_close("sums", sums, gsums, 1e-9, 1e-9), check_close("backward sums", local, glocal, 1e-9, 1e-7);
      check_close("y", y, gy, 1e-5), check_close("dx", dx, gdx, 1e-5);
      check_close("dgamma", dgamma, gdg, 1e-5), check_close("dbeta", dbeta, gdb, 1e-5);
      check_close("running mean", rmean, grm, 1e-7), check_close("running var", rvar, grv, 1e-7);
      check_close("saved (inference statistics)", saved, gs, 1e-6), check_close("y (inference)", ye, gye, 1e-5);
    });
  }
}

TEST_CASE("zero-sized work launches nothing and is not an error", "[emu]") {
  Dev<float> a(4), b(4);
  Dev<double> m(2);
  activation_forward_gpu(Act::relu, a, b, 0, nullptr);
  dropout_forward_gpu(a, b, 0.5f, 1, 0, 10, 0, nullptr);
  bias_add_gpu(a, b, 0, 3, 5, nullptr);
  bias_grad_gpu(a, b, 2, 0, 5, nullptr);
  softmax_xent_gpu(a, b, nullptr, 0, 10, 1.f, 0.f, m, nullptr);
  maxpool_forward_gpu(a, nullptr, b, pool_shape(0, 3, 4, 4, 2, 2, 0), nullptr);
  sgd_update_gpu(a, nullptr, b, 0, SgdParams{0.1f, 0.f, 0.f, false}, nullptr);
  bn_sums_gpu(m, a, nullptr, nullptr, 2, 0, 4, nullptr);
  CHECK(cudaGetLastError() == cudaSuccess);
}

// ---- the emulator itself catches what a GPU would (or would silently get wrong)

namespace {

__global__ void racy_sum_kernel(float* out, const float* in) {
  __shared__ float part[64];
  part[threadIdx.x] = in[threadIdx.x];
  // a missing __syncthreads(): thread 0 may read slots not yet written
  if (threadIdx.x == 0) {
    float s = 0;
    for (int i = 0; i < 64; ++i) s += part[i];
    *out = s;
  }
}

__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 16) return;
  __syncthreads();
  out[threadIdx.x] = 1.f;
}

__global__ void copy_kernel(float* out, const float* in, size_t n) { RS_GRID_STRIDE(i, n) out[i] = in[i]; }

template <class F> std::string fatal_message(F&& f) {
  try {
    f();
  } catch (const Fatal& e) {
    emu::reset();
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the emulator fails kernels that race, diverge at a barrier, or get host pointers", "[emu]") {
  Dev<float> in(random_vec(64, 30)), out(64);
  CHECK_THAT(fatal_message([&] { RS_LAUNCH(racy_sum_kernel, 1, 64, nullptr, out.p, in.p); }),
             Catch::Contains("racy_sum_kernel") && Catch::Contains("GPU context is lost"));
  CHECK_THAT(fatal_message([&] { RS_LAUNCH(divergent_barrier_kernel, 2, 64, nullptr, out.p); }),
             Catch::Contains("divergent_barrier_kernel"));
  std::vector<float> host(64);
  CHECK_THAT(fatal_message([&] { RS_LAUNCH(copy_kernel, 1, 64, nullptr, out.p, host.data(), size_t(64)); }),
             Catch::Contains("copy_kernel"));
  RS_LAUNCH(copy_kernel, 1, 64, nullptr, out.p, in.p, size_t(64));  // and the device works again after a reset
  CHECK(out.host() == in.host());
}

TEST_CASE("launch errors: configuration, a device fault, and an ordinary error does not stick", "[emu]") {
  Dev<float> in(random_vec(64, 31)), out(64);
  CHECK_THROWS_WITH(RS_LAUNCH(copy_kernel, 1, 2048, nullptr, out.p, in.p, size_t(64)),
                    Catch::Contains("copy_kernel") && Catch::Contains("invalid configuration"));
  emu::fail_next_launch(cudaErrorIllegalAddress);
  const std::string m = fatal_message([&] { RS_LAUNCH(copy_kernel, 1, 64, nullptr, out.p, in.p, size_t(64)); });
  CHECK_THAT(m, Catch::Contains("copy_kernel") && Catch::Contains("illegal memory access") && Catch::Contains("rank"));
  // out of memory is an ordinary failure: thrown, then cleared, so the next launch is fine
  void* huge = nullptr;
  CHECK_THROWS_WITH([&] { CUDA_CHECK(cudaMalloc(&huge, size_t(1) << 40)); }(), Catch::Contains("out of memory"));
  RS_LAUNCH(copy_kernel, 1, 64, nullptr, out.p, in.p, size_t(64));
  CHECK(out.host() == in.host());
}

TEST_CASE("the cuBLAS stand-in checks its arguments like cuBLAS", "[emu]") {
  Dev<float> a(6), b(6), c(4);
  const float one = 1.f, zero = 0.f;
  // C (2x2) = A (2x3) . B (3x2), column-major: lda >= 2, ldb >= 3
  CHECK(cublasSgemm(ctx().cublas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 2) ==
        CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSgemm(ctx().cublas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 1, b, 3, &zero, c, 2) ==
        CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSgemm(ctx().cublas, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 2) ==
        CUBLAS_STATUS_INVALID_VALUE);  // A^T is 3x2 as stored: lda >= 3
  CHECK(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a, 2, b, 3, &zero, c, 2) ==
        CUBLAS_STATUS_NOT_INITIALIZED);
  // a matrix larger than its allocation is a device fault
  CHECK(cublasSgemm(ctx().cublas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 3, 3, &one, a, 2, b, 3, &zero, c, 2) ==
        CUBLAS_STATUS_EXECUTION_FAILED);
  CHECK(cudaGetLastError() == cudaErrorIllegalAddress);
  emu::reset();
}

TEST_CASE("convolution plans: the next algorithm within a workspace, fitting a plan to less", "[emu]") {
  // (algorithm, workspace bytes) in cuDNN's heuristic order
  ConvPlan p;
  p.fwd.candidates = {{1, 100}, {2, 10}, {3, 0}};
  p.bwd_data.candidates = {{5, 50}, {6, 30}};
  p.bwd_filter.candidates = {{7, 0}};
  CHECK(p.workspace_bytes() == 100);
  CHECK(p.fit(60));  // forward falls back to algorithm 2; the others already fit
  CHECK(p.fwd.algo() == 2);
  CHECK(p.bwd_data.algo() == 5);
  CHECK(p.workspace_bytes() == 50);
  CHECK(p.fit(40));
  CHECK(p.bwd_data.algo() == 6);
  CHECK_FALSE(p.fit(20));  // backward data has nothing smaller
  CHECK(p.fwd.next(0));    // "not supported" at run time: the next candidate that fits
  CHECK(p.fwd.algo() == 3);
  CHECK_FALSE(p.fwd.next(1000));
}

TEST_CASE("every device allocation of the tests was freed", "[emu]") { CHECK(emu::live_device_bytes() == 0); }

int main(int argc, char** argv) {
  gpu_fatal_handler() = [](const std::string& m) { throw Fatal(m); };
  return Catch::Session().run(argc, argv);
}
