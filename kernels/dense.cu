// Dense layer on the GPU: cuBLAS for the products (column-major views of our
// row-major tensors), hand-written kernels for the bias.
//   row-major out (B, OUT) = in (B, IN) . w^T   <=>   col-major out^T = w . in^T
#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {

__global__ void bias_add_kernel(float* out, const float* b, int C, size_t HW, size_t n) {
  RS_GRID_STRIDE(i, n) out[i] += b[(i / HW) % C];
}

// One block per channel; a fixed-shape tree reduction: deterministic.
__global__ void bias_grad_kernel(float* db, const float* dout, int N, int C, size_t HW) {
  __shared__ float part[kThreads];
  const int c = blockIdx.x;
  float s = 0.f;
  for (size_t i = threadIdx.x; i < size_t(N) * HW; i += blockDim.x) {
    const size_t n = i / HW, p = i % HW;
    s += dout[(n * C + c) * HW + p];
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[c] = part[0];
}

void bias_add_gpu(float* out, const float* b, int N, int C, size_t HW, cudaStream_t st) {
  const size_t n = size_t(N) * C * HW;
  RS_LAUNCH(bias_add_kernel, grid_for(n), kThreads, st, out, b, C, HW, n);
}

void bias_grad_gpu(float* db, const float* dout, int N, int C, size_t HW, cudaStream_t st) {
  RS_LAUNCH(bias_grad_kernel, C, kThreads, st, db, dout, N, C, HW);
}

void dense_forward_gpu(float* out, const float* in, const float* w, const float* b, int B, int IN, int OUT,
                       const GpuContext& ctx) {
  const float one = 1.f, zero = 0.f;
  CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, OUT, B, IN, &one, w, IN, in, IN, &zero, out, OUT));
  bias_add_gpu(out, b, B, OUT, 1, ctx.stream);
}

void dense_backward_gpu(float* din, float* dw, float* db, const float* dout, const float* in, const float* w, int B,
                        int IN, int OUT, const GpuContext& ctx) {
  const float one = 1.f, zero = 0.f;
  // dw (OUT, IN) = dout^T . in   <=>  col-major dw^T (IN, OUT) = in^T . dout
  if (dw)
    CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_T, IN, OUT, B, &one, in, IN, dout, OUT, &zero, dw, IN));
  bias_grad_gpu(db, dout, B, OUT, 1, ctx.stream);
  // din (B, IN) = dout . w   <=>  col-major din^T (IN, B) = w^T . dout^T
  if (din)
    CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, IN, B, OUT, &one, w, IN, dout, OUT, &zero, din, IN));
}

}  // namespace rs
