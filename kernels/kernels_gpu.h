// CUDA launchers for every layer family: the same arguments, in the same
// order, as kernels_cpu.h, plus the GPU context (stream and library handles).
// All pointers are device memory; every call is asynchronous on ctx.stream.
// Per-element math comes from hd_math.h, shared with the CPU loops.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels_cpu.h"

namespace rs {

struct GpuContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
};

// The algorithms cuDNN's heuristics offer for one direction of a
// convolution, best first, each with the workspace it needs; `at` is in use.
struct ConvAlgos {
  std::vector<std::pair<int, size_t>> candidates;  // (algorithm, workspace bytes)
  size_t at = 0;
  int algo() const { return candidates[at].first; }
  size_t workspace() const { return candidates[at].second; }
  // Move to the next candidate needing at most `cap` bytes; false if none.
  bool next(size_t cap) {
    for (size_t i = at + 1; i < candidates.size(); ++i)
      if (candidates[i].second <= cap) return at = i, true;
    return false;
  }
};

// cuDNN descriptors and algorithms for one convolution shape, chosen once:
// the heuristics' candidates that need at most `workspace_cap` bytes (and
// are deterministic, if asked). A candidate that fails with "not supported"
// or an allocation failure is replaced by the next one (conv2d_*_gpu).
struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ConvAlgos fwd, bwd_data, bwd_filter;
  size_t workspace_bytes() const { return std::max({fwd.workspace(), bwd_data.workspace(), bwd_filter.workspace()}); }
  // Fit the plan into `bytes` of workspace (smaller candidates); false if it cannot.
  bool fit(size_t bytes) {
    for (ConvAlgos* a : {&fwd, &bwd_data, &bwd_filter})
      if (a->workspace() > bytes && !a->next(bytes)) return false;
    return true;
  }
};
ConvPlan conv_plan_create(const ConvShape& s, bool deterministic, size_t workspace_cap, const GpuContext& ctx);
void conv_plan_destroy(ConvPlan& p) noexcept;

// ---- dense (cuBLAS): out (B, OUT) = in (B, IN) . w^T + b
void dense_forward_gpu(float* out, const float* in, const float* w, const float* b, int B, int IN, int OUT,
                       const GpuContext& ctx);
void dense_backward_gpu(float* din, float* dw, float* db, const float* dout, const float* in, const float* w, int B,
                        int IN, int OUT, const GpuContext& ctx);

// ---- conv2d (cuDNN; bias by hand-written kernels); ws: ws_bytes >= plan.workspace_bytes()
void conv2d_forward_gpu(float* out, const float* in, const float* w, const float* b, const ConvShape& s, ConvPlan& plan,
                        void* ws, size_t ws_bytes, const GpuContext& ctx);
void conv2d_backward_gpu(float* din, float* dw, float* db, const float* dout, const float* in, const float* w,
                         const ConvShape& s, ConvPlan& plan, void* ws, size_t ws_bytes, const GpuContext& ctx);

// ---- bias over (N, C, HW): add b[c]; db[c] = sum over n and hw (deterministic)
void bias_add_gpu(float* out, const float* b, int N, int C, size_t HW, cudaStream_t st);
void bias_grad_gpu(float* db, const float* dout, int N, int C, size_t HW, cudaStream_t st);

// ---- max-pool, activations, dropout (same semantics as the CPU versions)
void maxpool_forward_gpu(float* out, int32_t* argmax, const float* in, const PoolShape& s, cudaStream_t st);
void maxpool_backward_gpu(float* din, const float* dout, const int32_t* argmax, const PoolShape& s, cudaStream_t st);
void activation_forward_gpu(Act a, float* y, const float* x, size_t n, cudaStream_t st);
void activation_backward_gpu(Act a, float* dx, const float* dy, const float* x, const float* y, size_t n,
                             cudaStream_t st);
void dropout_forward_gpu(float* y, const float* x, float p, uint64_t key, int B, size_t per_sample,
                         uint64_t first_sample, cudaStream_t st);
void dropout_backward_gpu(float* dx, const float* dy, float p, uint64_t key, int B, size_t per_sample,
                          uint64_t first_sample, cudaStream_t st);

// ---- fused softmax + cross-entropy forward/backward and accuracy counting:
// metrics[0] += sum of losses, metrics[1] += correct predictions
void softmax_xent_gpu(float* dlogits, const float* logits, const int32_t* labels, int B, int K, float scale, float eps,
                      double* metrics, cudaStream_t st);

// ---- optimizers over the flat buffers
// ---- batch normalisation (kernels_cpu.h's bn_* contract)
void bn_sums_gpu(double* sums, const float* a, const float* b, const float* saved, int B, int C, size_t HW,
                 cudaStream_t st);
void bn_forward_gpu(float* y, const float* x, const float* gamma, const float* beta, float* saved, float* running_mean,
                    float* running_var, const double* sums, const BnParams& p, int B, int C, size_t HW,
                    cudaStream_t st);
void bn_backward_gpu(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* gamma,
                     const float* saved, const double* local, const double* global, const BnParams& p, int B, int C,
                     size_t HW, cudaStream_t st);

void sgd_update_gpu(float* p, float* v, const float* g, size_t n, const SgdParams& o, cudaStream_t st);
void adam_update_gpu(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o, cudaStream_t st);

// ---- input: out (B, C, HW) = (in * scale - mean[c]) * inv_std[c]; in is
// uint8 (scale 1/255) or float (scale 1); mean, inv_std on the device
void normalize_gpu(float* out, const uint8_t* in, int B, int C, size_t HW, const float* mean, const float* inv_std,
                   cudaStream_t st);
void normalize_gpu(float* out, const float* in, int B, int C, size_t HW, const float* mean, const float* inv_std,
                   cudaStream_t st);
// With augmentation (kernels_cpu.h's gather_augment_cpu): idx (B) the samples' dataset indices, on the device.
void augment_normalize_gpu(float* out, const uint8_t* in, const int64_t* idx, int B, int C, int H, int W,
                           const float* mean, const float* inv_std, int pad, bool flip, uint64_t key, cudaStream_t st);
void augment_normalize_gpu(float* out, const float* in, const int64_t* idx, int B, int C, int H, int W,
                           const float* mean, const float* inv_std, int pad, bool flip, uint64_t key, cudaStream_t st);

}  // namespace rs
