// CPU backend: forwards to the reference kernels (kernels/*_cpu.cpp).
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

#include "backend/backend.h"
#include "error.h"

namespace rs {
namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend() { flush_denormals_everywhere(); }
  BackendKind kind() const override { return BackendKind::cpu; }
  std::string name() const override { return "cpu"; }

  void* alloc(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p)
      throw std::runtime_error(fmt::format(
          "out of memory: cannot allocate {:.3g} GB of model, optimizer or batch buffers on rank {} (batch size, "
          "eval_batch_size and the model's size set it)",
          double(bytes) / 1e9, process_rank()));
    return p;
  }
  void release(void* p) noexcept override { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memmove(dst, src, bytes);
  }
  void zero(void* p, size_t bytes) override {
    if (bytes) std::memset(p, 0, bytes);
  }

  void dense_forward(float* out, const float* in, const float* w, const float* b, int B, int IN, int OUT) override {
    dense_forward_cpu(out, in, w, b, B, IN, OUT);
  }
  void dense_backward(float* din, float* dw, float* db, const float* dout, const float* in, const float* w, int B,
                      int IN, int OUT) override {
    dense_backward_cpu(din, dw, db, dout, in, w, B, IN, OUT);
  }
  void conv2d_forward(float* out, const float* in, const float* w, const float* b, const ConvShape& s) override {
    conv2d_forward_cpu(out, in, w, b, s);
  }
  void conv2d_backward(float* din, float* dw, float* db, const float* dout, const float* in, const float* w,
                       const ConvShape& s) override {
    conv2d_backward_cpu(din, dw, db, dout, in, w, s);
  }
  void maxpool_forward(float* out, int32_t* argmax, const float* in, const PoolShape& s) override {
    maxpool_forward_cpu(out, argmax, in, s);
  }
  void maxpool_backward(float* din, const float* dout, const int32_t* argmax, const PoolShape& s) override {
    maxpool_backward_cpu(din, dout, argmax, s);
  }
  void activation_forward(Act a, float* y, const float* x, size_t n) override { activation_forward_cpu(a, y, x, n); }
  void activation_backward(Act a, float* dx, const float* dy, const float* x, const float* y, size_t n) override {
    activation_backward_cpu(a, dx, dy, x, y, n);
  }
  void dropout_forward(float* y, const float* x, float p, uint64_t key, int B, size_t per_sample,
                       uint64_t first) override {
    dropout_forward_cpu(y, x, p, key, B, per_sample, first);
  }
  void dropout_backward(float* dx, const float* dy, float p, uint64_t key, int B, size_t per_sample,
                        uint64_t first) override {
    dropout_backward_cpu(dx, dy, p, key, B, per_sample, first);
  }
  void softmax_xent(float* dlogits, const float* logits, const int32_t* labels, int B, int K, float scale, float eps,
                    double* metrics) override {
    m_loss.resize(size_t(B));
    m_pred.resize(size_t(B));
    softmax_xent_cpu(dlogits, m_loss.data(), m_pred.data(), logits, labels, B, K, scale, eps);
    for (int b = 0; b < B; ++b) metrics[0] += m_loss[b], metrics[1] += m_pred[b] == labels[b];  // in order
  }
  void bn_sums(double* sums, const float* a, const float* b, const float* saved, int B, int C, size_t HW) override {
    bn_sums_cpu(sums, a, b, saved, B, C, HW);
  }
  void bn_forward(float* y, const float* x, const float* gamma, const float* beta, float* saved, float* running_mean,
                  float* running_var, const double* sums, const BnParams& p, int B, int C, size_t HW) override {
    bn_forward_cpu(y, x, gamma, beta, saved, running_mean, running_var, sums, p, B, C, HW);
  }
  void bn_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* gamma,
                   const float* saved, const double* local, const double* global, const BnParams& p, int B, int C,
                   size_t HW) override {
    bn_backward_cpu(dx, dgamma, dbeta, dy, x, gamma, saved, local, global, p, B, C, HW);
  }
  void sgd_update(float* p, float* v, const float* g, size_t n, const SgdParams& o) override {
    sgd_update_cpu(p, v, g, n, o);
  }
  void adam_update(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o) override {
    adam_update_cpu(p, m, v, g, n, o);
  }
  void load_batch(float* x, int32_t* labels, const HostSamples& d, const int64_t* idx, int B, const float* mean,
                  const float* inv_std, const Augment& aug) override {
    const size_t hw = size_t(d.h) * d.w;
    if (aug.any() && d.is_u8())
      gather_augment_cpu(x, d.u8, idx, B, d.c, d.h, d.w, mean, inv_std, aug.pad, aug.flip, aug.key);
    else if (aug.any())
      gather_augment_cpu(x, d.f32, idx, B, d.c, d.h, d.w, mean, inv_std, aug.pad, aug.flip, aug.key);
    else if (d.is_u8())
      gather_normalize_cpu(x, d.u8, idx, B, d.c, hw, mean, inv_std);
    else
      gather_normalize_cpu(x, d.f32, idx, B, d.c, hw, mean, inv_std);
    for (int b = 0; b < B; ++b) labels[b] = d.labels[size_t(idx[b])];
  }

 private:
  std::vector<float> m_loss;
  std::vector<int32_t> m_pred;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace rs
