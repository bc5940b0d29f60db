// conv2d on the GPU: cuDNN forward, backward-data and backward-filter, with
// the algorithms chosen once per shape (ConvPlan) and exact FP32 math (no
// TF32), so results compare with the CPU reference; bias by hand-written
// kernels (dense.cu).
#include <cstdint>
#include <string>

#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {
namespace {

// The usable heuristic results, best first: succeeded, deterministic if asked,
// workspace within the cap.
template <class Perf> ConvAlgos candidates(const Perf* perf, int n, bool deterministic, size_t cap, const char* what) {
  ConvAlgos a;
  size_t smallest = SIZE_MAX;
  for (int i = 0; i < n; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || (deterministic && perf[i].determinism != CUDNN_DETERMINISTIC))
      continue;
    smallest = std::min(smallest, perf[i].memory);
    if (perf[i].memory <= cap) a.candidates.emplace_back(int(perf[i].algo), perf[i].memory);
  }
  if (a.candidates.empty())
    gpu_fail("cuDNN", what,
             smallest == SIZE_MAX ? std::string("no usable algorithm for this shape")
                                  : "every algorithm needs more workspace than train.cudnn_workspace_mb allows (the "
                                    "smallest needs " +
                                        std::to_string((smallest + (1 << 20) - 1) >> 20) + " MiB)",
             __FILE__, __LINE__);
  return a;
}

// cuDNN's "not supported" family and its allocation failures: try the next candidate.
bool try_next(cudnnStatus_t st) {
  return CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED ||
         st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
         st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
}

// Run one direction with its current algorithm, falling back to the next
// candidate that fits the workspace while the failure says to.
template <class Run> void run_algos(ConvAlgos& a, size_t ws_bytes, const char* what, Run run) {
  for (;;) {
    const cudnnStatus_t st = run(a.algo());
    if (st == CUDNN_STATUS_SUCCESS) return;
    if (!try_next(st) || !a.next(ws_bytes)) gpu_fail("cuDNN", what, cudnnGetErrorString(st), __FILE__, __LINE__);
  }
}

}  // namespace

ConvPlan conv_plan_create(const ConvShape& s, bool deterministic, size_t workspace_cap, const GpuContext& ctx) {
  ConvPlan p;
  try {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p.conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.B, s.C, s.H, s.W));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.B, s.OC, s.OH, s.OW));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.OC, s.C, s.K, s.K));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p.conv, s.pad, s.pad, s.stride, s.stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, CUDNN_FMA_MATH));

    constexpr int kMax = 16;
    int n = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[kMax];
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, p.x, p.w, p.conv, p.y, kMax, &n, fwd));
    p.fwd = candidates(fwd, n, deterministic, workspace_cap, "forward algorithm");
    cudnnConvolutionBwdDataAlgoPerf_t bd[kMax];
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.cudnn, p.w, p.y, p.conv, p.x, kMax, &n, bd));
    p.bwd_data = candidates(bd, n, deterministic, workspace_cap, "backward-data algorithm");
    cudnnConvolutionBwdFilterAlgoPerf_t bf[kMax];
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx.cudnn, p.x, p.y, p.conv, p.w, kMax, &n, bf));
    p.bwd_filter = candidates(bf, n, deterministic, workspace_cap, "backward-filter algorithm");
  } catch (...) {
    conv_plan_destroy(p);
    throw;
  }
  return p;
}

void conv_plan_destroy(ConvPlan& p) noexcept {
  if (p.x) CUDNN_CHECK_NOTHROW(cudnnDestroyTensorDescriptor(p.x));
  if (p.y) CUDNN_CHECK_NOTHROW(cudnnDestroyTensorDescriptor(p.y));
  if (p.w) CUDNN_CHECK_NOTHROW(cudnnDestroyFilterDescriptor(p.w));
  if (p.conv) CUDNN_CHECK_NOTHROW(cudnnDestroyConvolutionDescriptor(p.conv));
  p = ConvPlan{};
}

void conv2d_forward_gpu(float* out, const float* in, const float* w, const float* b, const ConvShape& s, ConvPlan& p,
                        void* ws, size_t ws_bytes, const GpuContext& ctx) {
  const float one = 1.f, zero = 0.f;
  run_algos(p.fwd, ws_bytes, "cudnnConvolutionForward", [&](int algo) {
    return cudnnConvolutionForward(ctx.cudnn, &one, p.x, in, p.w, w, p.conv, cudnnConvolutionFwdAlgo_t(algo), ws,
                                   ws_bytes, &zero, p.y, out);
  });
  bias_add_gpu(out, b, s.B, s.OC, size_t(s.OH) * s.OW, ctx.stream);
}

void conv2d_backward_gpu(float* din, float* dw, float* db, const float* dout, const float* in, const float* w,
                         const ConvShape& s, ConvPlan& p, void* ws, size_t ws_bytes, const GpuContext& ctx) {
  const float one = 1.f, zero = 0.f;
  bias_grad_gpu(db, dout, s.B, s.OC, size_t(s.OH) * s.OW, ctx.stream);
  run_algos(p.bwd_filter, ws_bytes, "cudnnConvolutionBackwardFilter", [&](int algo) {
    return cudnnConvolutionBackwardFilter(ctx.cudnn, &one, p.x, in, p.y, dout, p.conv,
                                          cudnnConvolutionBwdFilterAlgo_t(algo), ws, ws_bytes, &zero, p.w, dw);
  });
  if (din)
    run_algos(p.bwd_data, ws_bytes, "cudnnConvolutionBackwardData", [&](int algo) {
      return cudnnConvolutionBackwardData(ctx.cudnn, &one, p.w, w, p.y, dout, p.conv,
                                          cudnnConvolutionBwdDataAlgo_t(algo), ws, ws_bytes, &zero, p.x, din);
    });
}

}  // namespace rs
