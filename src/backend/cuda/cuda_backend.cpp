// CUDA backend: device memory, streams and library handles for one GPU, and
// the kernels of kernels/*.cu behind the Backend interface. Everything runs
// asynchronously on one compute stream; batch input is gathered on the host
// into pinned buffers (two slots) and uploaded on a copy stream, so batch s+1
// travels while batch s computes. Host copies happen only at checkpoint,
// logging and test time (upload/download, which synchronise).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <nccl.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/device.h"
#include "error.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels_gpu.h"

namespace rs {

std::vector<std::string> visible_cuda_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error here
    return {};
  }
  std::vector<std::string> ids;
  for (int d = 0; d < n; ++d) {
    char pci[32] = {0};
    if (cudaDeviceGetPCIBusId(pci, sizeof pci, d) != cudaSuccess) {
      cudaGetLastError();
      std::snprintf(pci, sizeof pci, "device%d", d);
    }
    ids.emplace_back(pci);
  }
  return ids;
}

std::string cuda_info() {
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  const bool have_driver = cudaDriverGetVersion(&drv) == cudaSuccess && drv > 0;
  int cub_major = 0, cub_minor = 0, cub_patch = 0;
  cublasGetProperty(MAJOR_VERSION, &cub_major);
  cublasGetProperty(MINOR_VERSION, &cub_minor);
  cublasGetProperty(PATCH_LEVEL, &cub_patch);
  int nccl = 0;
  ncclGetVersion(&nccl);
  const size_t dnn = cudnnGetVersion();
  std::string s = fmt::format(
      "CUDA runtime {}.{}; driver {}; cuDNN {}.{}.{}; cuBLAS {}.{}.{}; NCCL {}.{}.{}\n", rt / 1000, rt % 1000 / 10,
      have_driver ? fmt::format("{}.{}", drv / 1000, drv % 1000 / 10) : "none", dnn / 10000, dnn % 10000 / 100,
      dnn % 100, cub_major, cub_minor, cub_patch, nccl / 10000, nccl % 10000 / 100, nccl % 100);
  const int n = int(visible_cuda_devices().size());
  if (n == 0) s += "gpus: none visible\n";
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    CUDA_CHECK(cudaGetDeviceProperties(&p, i));
    s += fmt::format("gpu {}: {}, {:.1f} GiB, compute capability {}.{}\n", i, p.name,
                     double(p.totalGlobalMem) / (1 << 30), p.major, p.minor);
  }
  return s;
}

namespace {

// Move-only device or pinned host allocation, grown on demand.
template <cudaError_t (*Alloc)(void**, size_t), cudaError_t (*Free)(void*)> struct CudaMem {
  void* p = nullptr;
  size_t bytes = 0;
  CudaMem() = default;
  CudaMem(const CudaMem&) = delete;
  CudaMem& operator=(const CudaMem&) = delete;
  ~CudaMem() {
    if (p) CUDA_CHECK_NOTHROW(Free(p));
  }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (p) CUDA_CHECK(Free(p));
    p = nullptr;
    bytes = 0;
    CUDA_CHECK(Alloc(&p, n));
    bytes = n;
  }
  // false (and nothing held) when the device is out of memory
  bool try_reserve(size_t n) {
    if (n <= bytes) return true;
    if (p) CUDA_CHECK(Free(p));
    p = nullptr;
    bytes = 0;
    const cudaError_t e = Alloc(&p, n);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // an ordinary error: not the next launch's
      p = nullptr;
      return false;
    }
    CUDA_CHECK(e);
    bytes = n;
    return true;
  }
};
using DeviceMem = CudaMem<cudaMalloc, cudaFree>;
using PinnedMem = CudaMem<cudaMallocHost, cudaFreeHost>;

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, bool deterministic, size_t workspace_cap)
      : m_device(device), m_deterministic(deterministic), m_workspace_cap(workspace_cap) {
    gpu_rank() = process_rank();
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&m_ctx.stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaStreamCreateWithFlags(&m_copy, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&m_ctx.cublas));
    CUBLAS_CHECK(cublasSetStream(m_ctx.cublas, m_ctx.stream));
    CUBLAS_CHECK(cublasSetMathMode(m_ctx.cublas, CUBLAS_PEDANTIC_MATH));  // FP32, comparable with the CPU
    CUDNN_CHECK(cudnnCreate(&m_ctx.cudnn));
    CUDNN_CHECK(cudnnSetStream(m_ctx.cudnn, m_ctx.stream));
    for (Slot& s : m_slots) {
      CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
      CUDA_CHECK(cudaEventCreateWithFlags(&s.consumed, cudaEventDisableTiming));
    }
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(m_ctx.stream);
    cudaStreamSynchronize(m_copy);
    for (auto& [k, p] : m_plans) conv_plan_destroy(p);
    for (Slot& s : m_slots) {
      CUDA_CHECK_NOTHROW(cudaEventDestroy(s.copied));
      CUDA_CHECK_NOTHROW(cudaEventDestroy(s.consumed));
    }
    CUDNN_CHECK_NOTHROW(cudnnDestroy(m_ctx.cudnn));
    CUBLAS_CHECK_NOTHROW(cublasDestroy(m_ctx.cublas));
    CUDA_CHECK_NOTHROW(cudaStreamDestroy(m_copy));
    CUDA_CHECK_NOTHROW(cudaStreamDestroy(m_ctx.stream));
  }

  BackendKind kind() const override { return BackendKind::cuda; }
  std::string name() const override { return fmt::format("cuda:{}", m_device); }

  void* alloc(size_t bytes) override {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }
  void release(void* p) noexcept override { CUDA_CHECK_NOTHROW(cudaFree(p)); }
  void upload(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, m_ctx.stream));
    synchronize();
  }
  void download(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, m_ctx.stream));
    synchronize();
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, m_ctx.stream));
  }
  void zero(void* p, size_t bytes) override { CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, m_ctx.stream)); }
  void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(m_ctx.stream)); }
  void* native_stream() const override { return m_ctx.stream; }

  void dense_forward(float* out, const float* in, const float* w, const float* b, int B, int IN, int OUT) override {
    dense_forward_gpu(out, in, w, b, B, IN, OUT, m_ctx);
  }
  void dense_backward(float* din, float* dw, float* db, const float* dout, const float* in, const float* w, int B,
                      int IN, int OUT) override {
    dense_backward_gpu(din, dw, db, dout, in, w, B, IN, OUT, m_ctx);
  }
  void conv2d_forward(float* out, const float* in, const float* w, const float* b, const ConvShape& s) override {
    conv2d_forward_gpu(out, in, w, b, s, plan(s), m_workspace.p, m_workspace.bytes, m_ctx);
  }
  void conv2d_backward(float* din, float* dw, float* db, const float* dout, const float* in, const float* w,
                       const ConvShape& s) override {
    conv2d_backward_gpu(din, dw, db, dout, in, w, s, plan(s), m_workspace.p, m_workspace.bytes, m_ctx);
  }
  void maxpool_forward(float* out, int32_t* argmax, const float* in, const PoolShape& s) override {
    maxpool_forward_gpu(out, argmax, in, s, m_ctx.stream);
  }
  void maxpool_backward(float* din, const float* dout, const int32_t* argmax, const PoolShape& s) override {
    maxpool_backward_gpu(din, dout, argmax, s, m_ctx.stream);
  }
  void activation_forward(Act a, float* y, const float* x, size_t n) override {
    activation_forward_gpu(a, y, x, n, m_ctx.stream);
  }
  void activation_backward(Act a, float* dx, const float* dy, const float* x, const float* y, size_t n) override {
    activation_backward_gpu(a, dx, dy, x, y, n, m_ctx.stream);
  }
  void dropout_forward(float* y, const float* x, float p, uint64_t key, int B, size_t per_sample,
                       uint64_t first) override {
    dropout_forward_gpu(y, x, p, key, B, per_sample, first, m_ctx.stream);
  }
  void dropout_backward(float* dx, const float* dy, float p, uint64_t key, int B, size_t per_sample,
                        uint64_t first) override {
    dropout_backward_gpu(dx, dy, p, key, B, per_sample, first, m_ctx.stream);
  }
  void softmax_xent(float* dlogits, const float* logits, const int32_t* labels, int B, int K, float scale, float eps,
                    double* metrics) override {
    softmax_xent_gpu(dlogits, logits, labels, B, K, scale, eps, metrics, m_ctx.stream);
  }
  void bn_sums(double* sums, const float* a, const float* b, const float* saved, int B, int C, size_t HW) override {
    bn_sums_gpu(sums, a, b, saved, B, C, HW, m_ctx.stream);
  }
  void bn_forward(float* y, const float* x, const float* gamma, const float* beta, float* saved, float* running_mean,
                  float* running_var, const double* sums, const BnParams& p, int B, int C, size_t HW) override {
    bn_forward_gpu(y, x, gamma, beta, saved, running_mean, running_var, sums, p, B, C, HW, m_ctx.stream);
  }
  void bn_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* gamma,
                   const float* saved, const double* local, const double* global, const BnParams& p, int B, int C,
                   size_t HW) override {
    bn_backward_gpu(dx, dgamma, dbeta, dy, x, gamma, saved, local, global, p, B, C, HW, m_ctx.stream);
  }
  void sgd_update(float* p, float* v, const float* g, size_t n, const SgdParams& o) override {
    sgd_update_gpu(p, v, g, n, o, m_ctx.stream);
  }
  void adam_update(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o) override {
    adam_update_gpu(p, m, v, g, n, o, m_ctx.stream);
  }

  void load_batch(float* x, int32_t* labels, const HostSamples& d, const int64_t* idx, int B, const float* mean,
                  const float* inv_std, const Augment& aug) override {
    set_normalisation(mean, inv_std, d.c);
    Slot& s = m_slots[m_next ^= 1];
    const size_t per = d.sample_size() * (d.is_u8() ? 1 : sizeof(float));
    // the slot: samples (padded to 256 bytes), their dataset indices (augmentation keys), labels
    const size_t data_bytes = (per * size_t(B) + 255) / 256 * 256, idx_bytes = sizeof(int64_t) * size_t(B);
    const size_t bytes = data_bytes + idx_bytes + sizeof(int32_t) * B;
    CUDA_CHECK(cudaEventSynchronize(s.copied));  // the pinned slot's last upload is done
    s.host.reserve(bytes);
    auto* h = static_cast<char*>(s.host.p);
    const char* src = d.is_u8() ? reinterpret_cast<const char*>(d.u8) : reinterpret_cast<const char*>(d.f32);
    for (int b = 0; b < B; ++b) std::memcpy(h + per * b, src + per * size_t(idx[b]), per);
    std::memcpy(h + data_bytes, idx, idx_bytes);
    auto* hl = reinterpret_cast<int32_t*>(h + data_bytes + idx_bytes);
    for (int b = 0; b < B; ++b) hl[b] = d.labels[size_t(idx[b])];
    if (s.dev.bytes < bytes) {  // growing: nobody may still read the old buffer
      CUDA_CHECK(cudaStreamWaitEvent(m_copy, s.consumed));
      CUDA_CHECK(cudaStreamSynchronize(m_copy));
      s.dev.reserve(bytes);
    }
    CUDA_CHECK(cudaStreamWaitEvent(m_copy, s.consumed));  // compute is done with this slot's raw batch
    CUDA_CHECK(cudaMemcpyAsync(s.dev.p, h, bytes, cudaMemcpyHostToDevice, m_copy));
    CUDA_CHECK(cudaEventRecord(s.copied, m_copy));
    CUDA_CHECK(cudaStreamWaitEvent(m_ctx.stream, s.copied));
    const auto* dev = static_cast<const char*>(s.dev.p);
    const size_t hw = size_t(d.h) * d.w;
    const auto* m = static_cast<const float*>(m_norm.p);
    const auto* didx = reinterpret_cast<const int64_t*>(dev + data_bytes);
    if (aug.any() && d.is_u8())
      augment_normalize_gpu(x, reinterpret_cast<const uint8_t*>(dev), didx, B, d.c, d.h, d.w, m, m + d.c, aug.pad,
                            aug.flip, aug.key, m_ctx.stream);
    else if (aug.any())
      augment_normalize_gpu(x, reinterpret_cast<const float*>(dev), didx, B, d.c, d.h, d.w, m, m + d.c, aug.pad,
                            aug.flip, aug.key, m_ctx.stream);
    else if (d.is_u8())
      normalize_gpu(x, reinterpret_cast<const uint8_t*>(dev), B, d.c, hw, m, m + d.c, m_ctx.stream);
    else
      normalize_gpu(x, reinterpret_cast<const float*>(dev), B, d.c, hw, m, m + d.c, m_ctx.stream);
    CUDA_CHECK(cudaMemcpyAsync(labels, dev + data_bytes + idx_bytes, sizeof(int32_t) * B, cudaMemcpyDeviceToDevice,
                               m_ctx.stream));
    CUDA_CHECK(cudaEventRecord(s.consumed, m_ctx.stream));
  }

 private:
  using PlanKey = std::tuple<int, int, int, int, int, int, int, int>;

  ConvPlan& plan(const ConvShape& s) {
    const PlanKey key{s.B, s.C, s.H, s.W, s.OC, s.K, s.stride, s.pad};
    auto it = m_plans.find(key);
    if (it == m_plans.end()) {
      ConvPlan p = conv_plan_create(s, m_deterministic, m_workspace_cap, m_ctx);
      try {
        grow_workspace(p);
      } catch (...) {
        conv_plan_destroy(p);
        throw;
      }
      it = m_plans.emplace(key, p).first;
    }
    return it->second;
  }

  // One workspace serves every plan: grow it to the plan's need; when the
  // device has no room, the plan takes smaller algorithms instead.
  void grow_workspace(ConvPlan& p) {
    if (p.workspace_bytes() <= m_workspace.bytes) return;
    synchronize();  // the old workspace may be in use by queued work
    const size_t had = m_workspace.bytes;
    if (m_workspace.try_reserve(p.workspace_bytes())) return;
    if (!m_workspace.try_reserve(had) || !p.fit(m_workspace.bytes))
      throw std::runtime_error(fmt::format("out of GPU memory for a convolution workspace of {} MiB (rank {})",
                                           (p.workspace_bytes() + (1 << 20) - 1) >> 20, process_rank()));
  }

  // The per-channel mean and 1/std on the device, queued on the compute
  // stream (the legacy stream would not be ordered with it: it is
  // non-blocking); the kernels that read the old values are queued before.
  void set_normalisation(const float* mean, const float* inv_std, int C) {
    std::vector<float> v(mean, mean + C);
    v.insert(v.end(), inv_std, inv_std + C);
    if (v == m_norm_host) return;
    if (m_norm.bytes < v.size() * sizeof(float)) {
      synchronize();  // growing frees the old buffer: nothing queued may still read it
      m_norm.reserve(v.size() * sizeof(float));
    }
    m_norm_host = std::move(v);  // pageable: staged before cudaMemcpyAsync returns (CUDA's API sync behaviour)
    CUDA_CHECK(cudaMemcpyAsync(m_norm.p, m_norm_host.data(), m_norm_host.size() * sizeof(float), cudaMemcpyHostToDevice,
                               m_ctx.stream));
  }

  struct Slot {
    PinnedMem host;
    DeviceMem dev;
    cudaEvent_t copied = nullptr, consumed = nullptr;
  };

  int m_device;
  bool m_deterministic;
  size_t m_workspace_cap;
  GpuContext m_ctx;
  cudaStream_t m_copy = nullptr;
  std::map<PlanKey, ConvPlan> m_plans;
  DeviceMem m_workspace, m_norm;
  std::vector<float> m_norm_host;
  Slot m_slots[2];
  int m_next = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device, bool deterministic, size_t workspace_cap) {
  return std::make_unique<CudaBackend>(device, deterministic, workspace_cap);
}

}  // namespace rs
