// The compute backend: memory and every layer's math, behind one interface.
// A model is built for one backend; pointers passed to it live in that
// backend's memory (host for cpu, device for cuda) unless named *_host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/host_samples.h"
#include "kernels/kernels_cpu.h"

namespace rs {

enum class BackendKind { cpu, cuda };

// Data augmentation of a training batch (hd_math.h's augment_draw): random
// crop with `pad` pixels of zero padding, horizontal flip; key = f(seed, epoch).
struct Augment {
  int pad = 0;
  bool flip = false;
  uint64_t key = 0;
  bool any() const { return pad > 0 || flip; }
};

// Sums small buffers of doubles (backend memory) over the ranks training one
// model, in place: batch statistics. Collective: every rank calls it in the
// same order.
class StatSum {
 public:
  virtual ~StatSum() = default;
  virtual void sum(double* x, size_t n) = 0;
};

// Samples per evaluation or inference pass when none is configured. CPU:
// 64, where a pass's activations stay in the caches (tf-mnist-cnn's first
// activation is 100 KB a sample); 256 was 20-25% slower there (Intel Xeon,
// 2026-12-07). GPU: 256, fewer launches.
inline int default_eval_batch(BackendKind k) { return k == BackendKind::cpu ? 64 : 256; }

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;
  virtual std::string name() const = 0;  // for people: "cpu", "cuda:0"

  // ---- memory
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* p) noexcept = 0;
  virtual void upload(void* dst, const void* src_host, size_t bytes) = 0;
  virtual void download(void* dst_host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void synchronize() {}
  // The stream all work is queued on (cudaStream_t), for NCCL; null on the CPU.
  virtual void* native_stream() const { return nullptr; }

  // ---- layers (argument order as in kernels/kernels_cpu.h)
  virtual void dense_forward(float* out, const float* in, const float* w, const float* b, int B, int IN, int OUT) = 0;
  // din or dw null: not computed.
  virtual void dense_backward(float* din, float* dw, float* db, const float* dout, const float* in, const float* w,
                              int B, int IN, int OUT) = 0;
  // Scratch (CPU: per-thread lowering buffers; CUDA: one cuDNN workspace) is the backend's own.
  virtual void conv2d_forward(float* out, const float* in, const float* w, const float* b, const ConvShape& s) = 0;
  virtual void conv2d_backward(float* din, float* dw, float* db, const float* dout, const float* in, const float* w,
                               const ConvShape& s) = 0;
  virtual void maxpool_forward(float* out, int32_t* argmax, const float* in, const PoolShape& s) = 0;
  virtual void maxpool_backward(float* din, const float* dout, const int32_t* argmax, const PoolShape& s) = 0;
  virtual void activation_forward(Act a, float* y, const float* x, size_t n) = 0;
  // x: the forward's input (read only by activations that say so: kActivations), y its output
  virtual void activation_backward(Act a, float* dx, const float* dy, const float* x, const float* y, size_t n) = 0;
  virtual void dropout_forward(float* y, const float* x, float p, uint64_t key, int B, size_t per_sample,
                               uint64_t first_sample) = 0;
  virtual void dropout_backward(float* dx, const float* dy, float p, uint64_t key, int B, size_t per_sample,
                                uint64_t first_sample) = 0;
  // Softmax cross-entropy over logits (B, K) against labels (B), labels
  // smoothed by eps (0: none): writes dlogits = scale * dloss/dlogits (unless
  // null) and adds the summed loss and the number of correct predictions to
  // metrics[0] and metrics[1] (doubles), so metrics stay in backend memory
  // until someone asks.
  virtual void softmax_xent(float* dlogits, const float* logits, const int32_t* labels, int B, int K, float scale,
                            float eps, double* metrics) = 0;

  // ---- batch normalisation over (B, C, HW) (kernels_cpu.h's bn_* contract):
  // sums and local/global are 2C doubles, saved 2C floats, all backend memory.
  virtual void bn_sums(double* sums, const float* a, const float* b, const float* saved, int B, int C, size_t HW) = 0;
  virtual void bn_forward(float* y, const float* x, const float* gamma, const float* beta, float* saved,
                          float* running_mean, float* running_var, const double* sums, const BnParams& p, int B, int C,
                          size_t HW) = 0;
  virtual void bn_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* gamma,
                           const float* saved, const double* local, const double* global, const BnParams& p, int B,
                           int C, size_t HW) = 0;

  // ---- optimizers over flat buffers of n floats
  virtual void sgd_update(float* p, float* v, const float* g, size_t n, const SgdParams& o) = 0;
  virtual void adam_update(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o) = 0;

  // ---- input: x (B, C, H, W) = normalised samples idx_host[0..B) of d and
  // labels (B) their labels (d lives in host memory), augmented when `aug`
  // says so. Asynchronous where the backend allows: the CUDA
  // backend uploads through pinned buffers on a copy stream, so the host
  // gathers batch s+1 while the device still computes batch s.
  virtual void load_batch(float* x, int32_t* labels, const HostSamples& d, const int64_t* idx_host, int B,
                          const float* mean_host, const float* inv_std_host, const Augment& aug) = 0;
};

std::unique_ptr<Backend> make_cpu_backend();
// The CUDA backend on device `device` (only in builds with RS_HAVE_CUDA).
std::unique_ptr<Backend> make_cuda_backend(int device, bool deterministic, size_t workspace_cap = size_t(1) << 30);

// Move-only typed buffer in a backend's memory.
template <class T> class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend& be, size_t n) : m_be(&be), m_n(n) {
    if (n) m_p = static_cast<T*>(be.alloc(n * sizeof(T)));
  }
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    swap(o);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (m_p && m_be) m_be->release(m_p);
  }
  // n values at p, which someone else owns and frees.
  static Buffer borrow(T* p, size_t n) {
    Buffer b;
    b.m_p = p;
    b.m_n = n;
    return b;
  }
  T* data() const { return m_p; }
  size_t size() const { return m_n; }

 private:
  void swap(Buffer& o) noexcept {
    std::swap(m_be, o.m_be);
    std::swap(m_p, o.m_p);
    std::swap(m_n, o.m_n);
  }
  Backend* m_be = nullptr;
  T* m_p = nullptr;
  size_t m_n = 0;
};

}  // namespace rs
