// [gpu]: every kernel and layer of the CUDA backend against the CPU backend,
// through the same Backend interface, on odd sizes; pass if
// |gpu - cpu| <= atol + rtol * |cpu| for every value (compare.h); the
// production default deterministic = false beside true; load_batch's
// pipelining; convolution plans across batch sizes; end-to-end training on
// both backends (loss, parameters, accuracy). [gpu-multi] runs under mpiexec
// with 2 ranks on 2 GPUs: NCCL sums against MPI's.
// Without the devices a case needs the binary reports itself skipped (exit
// 77, which ctest shows as "Skipped"): it never passes silently.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "backend/backend.h"
#include "backend/device.h"
#include "compare.h"
#include "config/config.h"
#include "helpers.h"
#include "mpi/bcast_data.h"
#include "train/trainer.h"

using namespace rs;
using namespace rs::test;

namespace {

int g_device = 0;  // this rank's GPU

// gpu: deterministic cuDNN algorithms; fast: the production default (any algorithm).
struct Backends {
  std::unique_ptr<Backend> cpu = make_cpu_backend(), gpu = make_cuda_backend(g_device, true),
                           fast = make_cuda_backend(g_device, false);
};
Backends& be() {
  static Backends b;
  return b;
}

// A host vector mirrored on the CPU backend and a GPU backend.
template <class T> struct Twin {
  Backend* gb;
  Buffer<T> c, g;
  Twin(const std::vector<T>& h, Backend& gpu = *be().gpu) : gb(&gpu), c(*be().cpu, h.size()), g(gpu, h.size()) {
    be().cpu->upload(c.data(), h.data(), h.size() * sizeof(T));
    gb->upload(g.data(), h.data(), h.size() * sizeof(T));
  }
  explicit Twin(size_t n, Backend& gpu = *be().gpu) : Twin(std::vector<T>(n, T(0)), gpu) {}
};

// of_max: atol is at least this share of the largest CPU value (sums whose
// rounding scales with the tensor, not with each value).
template <class T>
void compare(const char* what, const Twin<T>& t, double atol = 1e-5, double rtol = 1e-4, double of_max = 0) {
  const size_t n = t.c.size();
  std::vector<T> a(n), b(n);
  be().cpu->download(a.data(), t.c.data(), n * sizeof(T));
  t.gb->download(b.data(), t.g.data(), n * sizeof(T));
  double largest = 0;
  for (const T v : a) largest = std::max(largest, double(std::abs(v)));
  const Mismatch m = mismatch(a.data(), b.data(), n, std::max(atol, of_max * largest), rtol);
  INFO(m.describe(what));
  CHECK(m.bad == 0);
}

}  // namespace

TEST_CASE("dense forward and backward", "[gpu]") {
  const int B = 7, IN = 13, OUT = 5;
  Twin<float> x(random_vec(B * IN, 1)), w(random_vec(OUT * IN, 2)), b(random_vec(OUT, 3)), y(B * OUT),
      dy(random_vec(B * OUT, 4)), dx(B * IN), dw(OUT * IN), db(OUT);
  for (auto* k : {be().cpu.get(), be().gpu.get()}) {
    const bool g = k == be().gpu.get();
    auto p = [&](Twin<float>& t) { return g ? t.g.data() : t.c.data(); };
    k->dense_forward(p(y), p(x), p(w), p(b), B, IN, OUT);
    k->dense_backward(p(dx), p(dw), p(db), p(dy), p(x), p(w), B, IN, OUT);
  }
  compare("dense y", y), compare("dense dx", dx), compare("dense dw", dw), compare("dense db", db);
}

// One convolution on the CPU and on GPU backend `g`, compared.
void check_conv(ConvShape s, Backend& g, uint32_t seed) {
  s.OH = (s.H + 2 * s.pad - s.K) / s.stride + 1, s.OW = (s.W + 2 * s.pad - s.K) / s.stride + 1;
  INFO("conv B " << s.B << " C " << s.C << " " << s.H << "x" << s.W << " OC " << s.OC << " K " << s.K << " stride "
                 << s.stride << " pad " << s.pad << " on " << g.name());
  const size_t nin = size_t(s.B) * s.C * s.H * s.W, nout = size_t(s.B) * s.OC * s.OH * s.OW;
  const size_t nw = size_t(s.OC) * s.C * s.K * s.K;
  Twin<float> x(random_vec(nin, seed), g), w(random_vec(nw, seed + 1), g), b(random_vec(s.OC, seed + 2), g), y(nout, g),
      dy(random_vec(nout, seed + 3), g), dx(nin, g), dw(nw, g), db(s.OC, g);
  for (Backend* k : {be().cpu.get(), &g}) {
    const bool gpu = k == &g;
    auto p = [&](Twin<float>& t) { return gpu ? t.g.data() : t.c.data(); };
    k->conv2d_forward(p(y), p(x), p(w), p(b), s);
    k->conv2d_backward(p(dx), p(dw), p(db), p(dy), p(x), p(w), s);
  }
  // The CPU backend takes Winograd at stride 1 with >= 16 channels (here the 32 -> 64 shapes): its
  // rounding is up to ~2e-5 of the tensor's largest value (tests/kernels/test_conv.cpp), not of each value.
  compare("conv y", y, 1e-4, 1e-4, 3e-5), compare("conv dx", dx, 1e-4, 1e-4, 3e-5);
  compare("conv dw", dw, 1e-4, 1e-4, 3e-5), compare("conv db", db, 1e-4);
}

TEST_CASE("conv2d forward and backward, deterministic and default algorithms", "[gpu]") {
  for (Backend* g : {be().gpu.get(), be().fast.get()}) {
    uint32_t seed = 5;
    for (const ConvShape s : {ConvShape{3, 2, 9, 7, 5, 3, 1, 1, 0, 0}, ConvShape{2, 3, 11, 10, 4, 5, 2, 2, 0, 0},
                              ConvShape{5, 1, 28, 28, 8, 5, 1, 2, 0, 0}, ConvShape{4, 32, 14, 14, 64, 5, 1, 2, 0, 0}})
      check_conv(s, *g, seed += 10);
  }
}

TEST_CASE("convolution plans reused across batch sizes; the workspace grows across shapes", "[gpu]") {
  // small shape first, then a larger batch (a new plan), a larger shape (more
  // workspace), and back to the first plan, which must still work
  const ConvShape small{2, 1, 12, 12, 4, 3, 1, 1, 0, 0}, wide{16, 32, 28, 28, 64, 5, 1, 2, 0, 0};
  for (Backend* g : {be().gpu.get(), be().fast.get()}) {
    ConvShape s = small;
    check_conv(s, *g, 1);
    s.B = 7;
    check_conv(s, *g, 2);
    check_conv(wide, *g, 3);
    check_conv(small, *g, 4);
  }
}

TEST_CASE("max-pool, activations, dropout", "[gpu]") {
  // 2x2 stride 2 (the CNN's), overlapping 3x3 stride 2 pad 1, 3x3 stride 1
  for (const PoolShape s : {PoolShape{3, 4, 9, 7, 3, 2, 1, 5, 4}, PoolShape{4, 32, 28, 28, 2, 2, 0, 14, 14},
                            PoolShape{2, 3, 5, 6, 3, 1, 1, 5, 6}}) {
    INFO("pool " << s.K << "x" << s.K << " stride " << s.stride << " pad " << s.pad << " on " << s.H << "x" << s.W);
    const size_t nin = size_t(s.B) * s.C * s.H * s.W, nout = size_t(s.B) * s.C * s.OH * s.OW;
    Twin<float> x(random_vec(nin, 9)), y(nout), dy(random_vec(nout, 10)), dx(nin);
    Twin<int32_t> am(nout);
    for (auto* k : {be().cpu.get(), be().gpu.get()}) {
      const bool g = k == be().gpu.get();
      auto p = [&](auto& t) { return g ? t.g.data() : t.c.data(); };
      k->maxpool_forward(p(y), p(am), p(x), s);
      k->maxpool_backward(p(dx), p(dy), p(am), s);
    }
    compare("maxpool y", y, 0, 0), compare("maxpool argmax", am, 0, 0), compare("maxpool dx", dx, 0, 0);
  }
  Twin<float> a(random_vec(1001, 11, -3, 3)), ay(1001), ady(random_vec(1001, 12)), adx(1001);
  for (const ActInfo& info : kActivations) {
    const Act act = info.act;
    for (auto* k : {be().cpu.get(), be().gpu.get()}) {
      const bool g = k == be().gpu.get();
      auto p = [&](auto& t) { return g ? t.g.data() : t.c.data(); };
      k->activation_forward(act, p(ay), p(a), 1001);
      k->activation_backward(act, p(adx), p(ady), p(a), p(ay), 1001);
    }
    compare("activation y", ay, 1e-6), compare("activation dx", adx, 1e-6);
  }
  for (auto* k : {be().cpu.get(), be().gpu.get()}) {
    const bool g = k == be().gpu.get();
    auto p = [&](auto& t) { return g ? t.g.data() : t.c.data(); };
    k->dropout_forward(p(ay), p(a), 0.3f, 77, 7, 143, 1000);
    k->dropout_backward(p(adx), p(ady), 0.3f, 77, 7, 143, 1000);
  }
  compare("dropout y (same masks)", ay, 0, 1e-6), compare("dropout dx", adx, 0, 1e-6);
}

TEST_CASE("softmax cross-entropy and accuracy counting: training and evaluation, several blocks", "[gpu]") {
  for (const auto [B, K] : {std::pair{37, 11}, std::pair{600, 10}}) {
    std::vector<int32_t> lh(B);
    for (int b = 0; b < B; ++b) lh[b] = (b * 7) % K;
    Twin<float> z(random_vec(size_t(B) * K, 13, -5, 5));
    Twin<int32_t> labels(lh);
    for (const float eps : {0.f, 0.1f}) {  // plain and label-smoothed
      for (const bool train : {true, false}) {
        INFO("B " << B << " K " << K << " eps " << eps << (train ? " with" : " without") << " gradient");
        Twin<float> dz(size_t(B) * K);
        Twin<double> metrics(std::vector<double>{0.5, 2});  // added to
        for (auto* k : {be().cpu.get(), be().gpu.get()}) {
          const bool g = k == be().gpu.get();
          auto p = [&](auto& t) { return g ? t.g.data() : t.c.data(); };
          k->softmax_xent(train ? p(dz) : nullptr, p(z), p(labels), B, K, 1.f / B, eps, p(metrics));
        }
        if (train) compare("softmax-xent dlogits", dz, 1e-6);
        compare("loss sum and correct count", metrics, 1e-4, 1e-5);
      }
    }
  }
}

TEST_CASE("optimizers over several steps: SGD, momentum, Nesterov, Adam, AdamW", "[gpu]") {
  const size_t n = 1003;
  for (int variant = 0; variant < 5; ++variant) {
    INFO("variant " << variant);
    Twin<float> pp(random_vec(n, 14)), v(random_vec(n, 15)), m2(random_vec(n, 16, 0, 1));
    for (int step = 1; step <= 4; ++step) {
      Twin<float> gr(random_vec(n, 100 + step));
      const float b1 = 0.9f, b2 = 0.999f;
      const SgdParams sp{0.1f, variant == 0 ? 0.f : 0.9f, 0.01f, variant == 2};
      const AdamParams ap{
          0.01f, b1, b2, 1e-8f, 0.01f, variant == 4, 1.f - std::pow(b1, float(step)), 1.f - std::pow(b2, float(step))};
      for (auto* k : {be().cpu.get(), be().gpu.get()}) {
        const bool g = k == be().gpu.get();
        auto p = [&](auto& t) { return g ? t.g.data() : t.c.data(); };
        if (variant < 3)
          k->sgd_update(p(pp), variant == 0 ? nullptr : p(v), p(gr), n, sp);
        else
          k->adam_update(p(pp), p(v), p(m2), p(gr), n, ap);
      }
    }
    compare("parameters", pp, 1e-6), compare("first moment / velocity", v, 1e-6), compare("second moment", m2, 1e-6);
  }
}

TEST_CASE("batch conversion", "[gpu]") {
  Dataset d;
  d.n = 20, d.c = 3, d.h = 5, d.w = 4;
  std::vector<uint8_t> px;
  std::vector<int32_t> lab;
  for (int i = 0; i < 20 * 60; ++i) px.push_back(uint8_t(i * 37));
  for (int i = 0; i < 20; ++i) lab.push_back(i % 10);
  d.u8 = std::move(px);
  d.labels = std::move(lab);
  const std::vector<int64_t> idx{19, 3, 3, 0, 11, 7, 2};
  const float mean[3] = {0.1f, 0.5f, 0.9f}, inv_std[3] = {2.f, 3.f, 4.f};
  Twin<float> xb(7 * 60);
  Twin<int32_t> lb(7);
  for (int round = 0; round < 2; ++round) {  // u8, then float samples
    for (const Augment aug : {Augment{}, Augment{2, true, 99}, Augment{1, false, 5}}) {
      for (auto* k : {be().cpu.get(), be().gpu.get()}) {
        const bool g = k == be().gpu.get();
        auto p = [&](auto& t) { return g ? t.g.data() : t.c.data(); };
        k->load_batch(p(xb), p(lb), d.view(), idx.data(), 7, mean, inv_std, aug);
      }
      INFO("augmentation pad " << aug.pad << " flip " << aug.flip);
      compare("batch", xb, 1e-6), compare("batch labels", lb, 0, 0);
    }
    d.f32 = std::vector<float>(d.u8.begin(), d.u8.end());
  }
}

TEST_CASE("load_batch pipelining: slots reused, grown, normalisation changed between batches", "[gpu]") {
  Dataset d;
  d.n = 300, d.c = 1, d.h = 6, d.w = 5;
  std::vector<uint8_t> px;
  std::vector<int32_t> lab;
  for (int i = 0; i < 300 * 30; ++i) px.push_back(uint8_t(i * 13 + i / 7));
  for (int i = 0; i < 300; ++i) lab.push_back(i % 10);
  d.u8 = std::move(px);
  d.labels = std::move(lab);
  // six batches queued back to back (nothing synchronises between them):
  // both slots reused, the slots growing (3, 5, 200 samples), the constants changing
  const std::vector<int> sizes{3, 5, 200, 4, 200, 1};
  std::vector<std::unique_ptr<Twin<float>>> xs;
  std::vector<std::unique_ptr<Twin<int32_t>>> ls;
  for (size_t k = 0; k < sizes.size(); ++k) {
    std::vector<int64_t> idx(sizes[k]);
    for (int b = 0; b < sizes[k]; ++b) idx[b] = (b * 37 + int(k) * 11) % 300;
    const float mean[1] = {0.1f * float(k)}, inv_std[1] = {1.f + float(k % 3)};
    xs.push_back(std::make_unique<Twin<float>>(size_t(sizes[k]) * 30));
    ls.push_back(std::make_unique<Twin<int32_t>>(size_t(sizes[k])));
    for (auto* be_ : {be().cpu.get(), be().gpu.get()}) {
      const bool g = be_ == be().gpu.get();
      be_->load_batch(g ? xs[k]->g.data() : xs[k]->c.data(), g ? ls[k]->g.data() : ls[k]->c.data(), d.view(),
                      idx.data(), sizes[k], mean, inv_std, k % 2 ? Augment{1, true, 7} : Augment{});
    }
  }
  for (size_t k = 0; k < sizes.size(); ++k) {
    INFO("batch " << k << " of " << sizes[k] << " samples");
    compare("batch", *xs[k], 1e-6), compare("labels", *ls[k], 0, 0);
  }
}

TEST_CASE("batch normalisation: statistics, running estimates, gradients", "[gpu]") {
  for (const int HW : {1, 42}) {  // after a dense layer, after a convolution
    const int B = 5, C = 3;
    const size_t n = size_t(B) * C * HW;
    Twin<float> x(random_vec(n, 21, -2, 3)), y(n), dy(random_vec(n, 22)), dx(n);
    Twin<float> gamma(random_vec(C, 23, 0.5, 1.5)), beta(random_vec(C, 24)), dgamma(C), dbeta(C), saved(2 * C);
    Twin<float> rmean(std::vector<float>(C, 0.f)), rvar(std::vector<float>(C, 1.f)), ye(n);
    Twin<double> sums(2 * C), local(2 * C), global(2 * C);
    const BnParams train{true, double(B) * HW, 0.1, 1e-5}, eval{false, double(B) * HW, 0.1, 1e-5};
    for (auto* k : {be().cpu.get(), be().gpu.get()}) {
      const bool g = k == be().gpu.get();
      auto p = [&](auto& t) { return g ? t.g.data() : t.c.data(); };
      k->bn_sums(p(sums), p(x), nullptr, nullptr, B, C, HW);
      k->bn_forward(p(y), p(x), p(gamma), p(beta), p(saved), p(rmean), p(rvar), p(sums), train, B, C, HW);
      k->bn_sums(p(local), p(dy), p(x), p(saved), B, C, HW);
      k->copy(p(global), p(local), 2 * C * sizeof(double));
      k->bn_backward(p(dx), p(dgamma), p(dbeta), p(dy), p(x), p(gamma), p(saved), p(local), p(global), train, B, C, HW);
      k->bn_forward(p(ye), p(x), p(gamma), p(beta), p(saved), p(rmean), p(rvar), nullptr, eval, B, C, HW);
    }
    INFO("HW " << HW);
    compare("bn sums", sums, 1e-9, 1e-9), compare("bn y", y, 1e-5), compare("bn saved", saved, 1e-6);
    compare("bn running mean", rmean, 1e-7), compare("bn running var", rvar, 1e-7);
    compare("bn backward sums", local, 1e-9, 1e-7), compare("bn dx", dx, 1e-5);
    compare("bn dgamma", dgamma, 1e-5), compare("bn dbeta", dbeta, 1e-5), compare("bn y (inference)", ye, 1e-5);
  }
}

TEST_CASE("end to end: a few training steps agree on both backends", "[gpu]") {
  TempDir dir("gpu_e2e");
  const Config cfg = parse_config_text(
      toy_idx(dir, 256, 64, 12, 12, 4) + "validation = 64\ncrop_padding = 2\nflip = true\n" + R"([model]
layers = [ { type = "conv2d", out = 6, kernel = 3, padding = 1 }, { type = "batchnorm" }, { type = "relu" },
           { type = "maxpool", kernel = 2 }, { type = "flatten" }, { type = "dense", out = 32 },
           { type = "batchnorm" }, { type = "tanh" }, { type = "dropout", p = 0.2 }, { type = "dense", out = 4 } ]
[train]
batch_size = 32
optimizer = "adam"
lr = 0.003
)",
      "gpu.toml", {});
  const Comm self(MPI_COMM_SELF);
  const Data data = load_and_bcast_data(self, cfg.data, 1);
  for (Backend* g : {be().gpu.get(), be().fast.get()}) {
    INFO("on " << g->name());
    Trainer a(cfg, data, *be().cpu, self), b(cfg, data, *g, self);
    a.init(), b.init();
    for (int e = 0; e < 2; ++e) a.run_epoch(), b.run_epoch();
    const auto &ha = a.history().cols, &hb = b.history().cols;
    for (int e = 0; e < 2; ++e) {
      INFO("epoch " << e + 1 << ": cpu loss " << ha.at("train_loss")[e] << ", gpu loss " << hb.at("train_loss")[e]);
      CHECK(std::abs(ha.at("train_loss")[e] - hb.at("train_loss")[e]) <= 1e-3 * std::abs(ha.at("train_loss")[e]));
      // 64 validation samples: at most one may be classified differently
      CHECK(std::abs(ha.at("val_accuracy")[e] - hb.at("val_accuracy")[e]) <= 1.0 / 64 + 1e-9);
    }
    const std::vector<float> pa = a.model().params_host(), pb = b.model().params_host();
    REQUIRE(pa.size() == pb.size());
    const Mismatch m = mismatch(pa.data(), pb.data(), pa.size(), 2e-3, 1e-2);  // 16 steps of rounding apart
    INFO(m.describe("parameters after 2 epochs"));
    CHECK(m.bad == 0);
    const std::vector<float> sa = a.model().state_host(), sb = b.model().state_host();
    const Mismatch ms = mismatch(sa.data(), sb.data(), sa.size(), 2e-3, 1e-2);
    INFO(ms.describe("batch-norm running statistics"));
    CHECK(ms.bad == 0);
  }
}

// ---- [gpu-multi]: 2 ranks, one GPU each (mpiexec -np 2)
TEST_CASE("NCCL sums equal MPI's: gradients (float) and batch statistics (double)", "[gpu-multi]") {
  const Comm world(MPI_COMM_WORLD);
  REQUIRE(world.size() >= 2);
  auto grads = make_grad_comm(*be().gpu, world);
  const size_t n = 100003;  // several buckets, odd
  std::vector<float> mine = random_vec(n, 40 + uint32_t(world.rank()));
  std::vector<float> want(n);
  MPI_Allreduce(mine.data(), want.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  Buffer<float> g(*be().gpu, n);
  be().gpu->upload(g.data(), mine.data(), n * sizeof(float));
  std::vector<Bucket> buckets{{0, n / 3, 2}, {n / 3, n - n / 3, 0}};
  auto ar = grads->make(g.data(), buckets, false);
  ar->begin();
  ar->layer_done(2);
  ar->finish();
  std::vector<float> got(n);
  be().gpu->download(got.data(), g.data(), n * sizeof(float));
  const Mismatch m = mismatch(want.data(), got.data(), n, 1e-6, 1e-6);
  INFO(m.describe("allreduced gradients"));
  CHECK(m.bad == 0);

  std::vector<double> s{double(world.rank()) + 0.25, 1e10 / (world.rank() + 1)}, ws(2);
  MPI_Allreduce(s.data(), ws.data(), 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  Buffer<double> gs(*be().gpu, 2);
  be().gpu->upload(gs.data(), s.data(), 2 * sizeof(double));
  grads->sum(gs.data(), 2);
  std::vector<double> gots(2);
  be().gpu->download(gots.data(), gs.data(), 2 * sizeof(double));
  CHECK(gots == ws);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int gpus = int(visible_cuda_devices().size());
  int rc = 77;
  if (gpus == 0) {
    if (rank == 0)
      std::printf(
          "SKIPPED: no CUDA device visible; the [gpu] tests (CUDA vs CPU for every kernel, end to end) "
          "did not run\n");
  } else if (gpus < size) {
    if (rank == 0) std::printf("SKIPPED: %d ranks need %d GPUs, %d visible; nothing ran\n", size, size, gpus);
  } else {
    g_device = rank;
    rc = Catch::Session().run(argc, argv);
  }
  MPI_Finalize();
  return rc;
}
