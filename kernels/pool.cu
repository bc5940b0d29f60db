// Max-pool on the GPU. Forward: a thread per output, scanning its window in
// row-major order with the CPU's tie rule (first maximum wins). Backward: a
// thread per input, summing the gradients of the outputs that chose it (a
// gather, so overlapping windows need no atomics and results are exact).
#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {

__global__ void maxpool_forward_kernel(float* out, int32_t* argmax, const float* in, PoolShape s, size_t n) {
  RS_GRID_STRIDE(i, n) {
    const int ow = int(i % s.OW), oh = int((i / s.OW) % s.OH);
    const size_t pl = i / (size_t(s.OW) * s.OH);
    const float* src = in + pl * s.H * s.W;
    const int h0 = oh * s.stride - s.pad, w0 = ow * s.stride - s.pad;
    float best = 0.f;
    int where = -1;
    for (int ih = max(h0, 0); ih < min(h0 + s.K, s.H); ++ih)
      for (int iw = max(w0, 0); iw < min(w0 + s.K, s.W); ++iw) {
        const float v = src[ih * s.W + iw];
        if (where < 0 || v > best) best = v, where = ih * s.W + iw;
      }
    out[i] = best;
    argmax[i] = where;
  }
}

__global__ void maxpool_backward_kernel(float* din, const float* dout, const int32_t* argmax, PoolShape s, size_t n) {
  RS_GRID_STRIDE(i, n) {
    const int iw = int(i % s.W), ih = int((i / s.W) % s.H);
    const size_t pl = i / (size_t(s.W) * s.H);
    const int me = ih * s.W + iw;
    // outputs whose window [o*stride - pad, o*stride - pad + K) covers (ih, iw)
    const int oh_lo = max(0, (ih + s.pad - s.K + s.stride) / s.stride), oh_hi = min(s.OH - 1, (ih + s.pad) / s.stride);
    const int ow_lo = max(0, (iw + s.pad - s.K + s.stride) / s.stride), ow_hi = min(s.OW - 1, (iw + s.pad) / s.stride);
    float g = 0.f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh)
      for (int ow = ow_lo; ow <= ow_hi; ++ow) {
        const size_t o = pl * s.OH * s.OW + size_t(oh) * s.OW + ow;
        if (argmax[o] == me) g += dout[o];
      }
    din[i] = g;
  }
}

void maxpool_forward_gpu(float* out, int32_t* argmax, const float* in, const PoolShape& s, cudaStream_t st) {
  const size_t n = size_t(s.B) * s.C * s.OH * s.OW;
  RS_LAUNCH(maxpool_forward_kernel, grid_for(n), kThreads, st, out, argmax, in, s, n);
}

void maxpool_backward_gpu(float* din, const float* dout, const int32_t* argmax, const PoolShape& s, cudaStream_t st) {
  const size_t n = size_t(s.B) * s.C * s.H * s.W;
  RS_LAUNCH(maxpool_backward_kernel, grid_for(n), kThreads, st, din, dout, argmax, s, n);
}

}  // namespace rs
