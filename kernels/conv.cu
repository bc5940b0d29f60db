// conv2d on the GPU: cuDNN forward, backward-data and backward-filter, with
// the algorithms chosen once per shape (ConvPlan) and exact FP32 math (no
// TF32), so results compare with the CPU reference; bias by hand-written
// kernels (dense.cu).
#include <algorithm>

#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {
namespace {

// First algorithm in cuDNN's heuristic order that succeeded and, if asked,
// is deterministic.
template <class Perf> const Perf& pick(const Perf* perf, int n, bool deterministic, const char* what) {
  for (int i = 0; i < n; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && (!deterministic || perf[i].determinism == CUDNN_DETERMINISTIC))
      return perf[i];
  gpu_fail("cuDNN", what, "no usable algorithm for this shape", __FILE__, __LINE__);
}

}  // namespace

ConvPlan conv_plan_create(const ConvShape& s, bool deterministic, const GpuContext& ctx) {
  ConvPlan p;
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
  p.fwd = pick(fwd, n, deterministic, "forward").algo;
  cudnnConvolutionBwdDataAlgoPerf_t bd[kMax];
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.cudnn, p.w, p.y, p.conv, p.x, kMax, &n, bd));
  p.bwd_data = pick(bd, n, deterministic, "backward data").algo;
  cudnnConvolutionBwdFilterAlgoPerf_t bf[kMax];
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx.cudnn, p.x, p.y, p.conv, p.w, kMax, &n, bf));
  p.bwd_filter = pick(bf, n, deterministic, "backward filter").algo;

  size_t a = 0, b = 0, c = 0;
  CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, p.x, p.w, p.conv, p.y, p.fwd, &a));
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, p.w, p.y, p.conv, p.x, p.bwd_data, &b));
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.cudnn, p.x, p.y, p.conv, p.w, p.bwd_filter, &c));
  p.workspace_bytes = std::max({a, b, c});
  return p;
}

void conv_plan_destroy(ConvPlan& p) noexcept {
  if (p.x) CUDNN_CHECK_NOTHROW(cudnnDestroyTensorDescriptor(p.x));
  if (p.y) CUDNN_CHECK_NOTHROW(cudnnDestroyTensorDescriptor(p.y));
  if (p.w) CUDNN_CHECK_NOTHROW(cudnnDestroyFilterDescriptor(p.w));
  if (p.conv) CUDNN_CHECK_NOTHROW(cudnnDestroyConvolutionDescriptor(p.conv));
  p = ConvPlan{};
}

void conv2d_forward_gpu(float* out, const float* in, const float* w, const float* b, const ConvShape& s,
                        const ConvPlan& p, void* ws, const GpuContext& ctx) {
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(
      cudnnConvolutionForward(ctx.cudnn, &one, p.x, in, p.w, w, p.conv, p.fwd, ws, p.workspace_bytes, &zero, p.y, out));
  bias_add_gpu(out, b, s.B, s.OC, size_t(s.OH) * s.OW, ctx.stream);
}

void conv2d_backward_gpu(float* din, float* dw, float* db, const float* dout, const float* in, const float* w,
                         const ConvShape& s, const ConvPlan& p, void* ws, const GpuContext& ctx) {
  const float one = 1.f, zero = 0.f;
  bias_grad_gpu(db, dout, s.B, s.OC, size_t(s.OH) * s.OW, ctx.stream);
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &one, p.x, in, p.y, dout, p.conv, p.bwd_filter, ws,
                                             p.workspace_bytes, &zero, p.w, dw));
  if (din)
    CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &one, p.w, w, p.y, dout, p.conv, p.bwd_data, ws,
                                             p.workspace_bytes, &zero, p.x, din));
}

}  // namespace rs
