// Batch normalisation on the GPU: one block per channel sums in double (a
// fixed tree, so reruns are bit-identical), a thread per channel turns the
// sums into statistics, and elementwise kernels apply hd_math.h's formulas.
#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {

// Block c: sums[c] = sum a, sums[C + c] = sum a * a (b null) or sum a * xhat(b).
__global__ void bn_sums_kernel(double* sums, const float* a, const float* b, const float* saved, int B, int C,
                               size_t HW) {
  __shared__ double s1[kThreads], s2[kThreads];
  const int c = blockIdx.x;
  double t1 = 0, t2 = 0;
  for (size_t j = threadIdx.x; j < size_t(B) * HW; j += blockDim.x) {
    const size_t o = (j / HW * C + c) * HW + j % HW;
    const double v = a[o];
    t1 += v;
    t2 += b ? v * double((b[o] - saved[c]) * saved[C + c]) : v * v;
  }
  s1[threadIdx.x] = t1, s2[threadIdx.x] = t2;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k /= 2) {
    if (int(threadIdx.x) < k) s1[threadIdx.x] += s1[threadIdx.x + k], s2[threadIdx.x] += s2[threadIdx.x + k];
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[c] = s1[0], sums[C + c] = s2[0];
}

__global__ void bn_stats_kernel(float* saved, float* running_mean, float* running_var, const double* sums, BnParams p,
                                int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  BnStats<float> st;
  if (p.train) {
    st = bn_batch_stats<float>(sums[c], sums[C + c], p.count, p.eps);
    if (running_mean) bn_update_running(running_mean + c, running_var + c, sums[c], sums[C + c], p.count, p.momentum);
  } else {
    st = bn_running_stats<float>(running_mean[c], running_var[c], p.eps);
  }
  saved[c] = st.mean, saved[C + c] = st.inv_std;
}

__global__ void bn_forward_kernel(float* y, const float* x, const float* gamma, const float* beta, const float* saved,
                                  int C, size_t HW, size_t n) {
  RS_GRID_STRIDE(i, n) {
    const int c = int(i / HW % C);
    y[i] = bn_forward(x[i], BnStats<float>{saved[c], saved[C + c]}, gamma[c], beta[c]);
  }
}

__global__ void bn_backward_kernel(float* dx, const float* dy, const float* x, const float* gamma, const float* saved,
                                   const double* global, double count, int C, size_t HW, size_t n) {
  RS_GRID_STRIDE(i, n) {
    const int c = int(i / HW % C);
    dx[i] = bn_backward(dy[i], x[i], BnStats<float>{saved[c], saved[C + c]}, gamma[c], global[c], global[C + c], count);
  }
}

__global__ void bn_param_grads_kernel(float* dgamma, float* dbeta, const double* local, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) dbeta[c] = float(local[c]), dgamma[c] = float(local[C + c]);
}

void bn_sums_gpu(double* sums, const float* a, const float* b, const float* saved, int B, int C, size_t HW,
                 cudaStream_t st) {
  RS_LAUNCH(bn_sums_kernel, C, kThreads, st, sums, a, b, saved, B, C, HW);
}

void bn_forward_gpu(float* y, const float* x, const float* gamma, const float* beta, float* saved, float* running_mean,
                    float* running_var, const double* sums, const BnParams& p, int B, int C, size_t HW,
                    cudaStream_t st) {
  RS_LAUNCH(bn_stats_kernel, (C + kThreads - 1) / kThreads, kThreads, st, saved, running_mean, running_var, sums, p, C);
  const size_t n = size_t(B) * C * HW;
  RS_LAUNCH(bn_forward_kernel, grid_for(n), kThreads, st, y, x, gamma, beta, saved, C, HW, n);
}

void bn_backward_gpu(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* gamma,
                     const float* saved, const double* local, const double* global, const BnParams& p, int B, int C,
                     size_t HW, cudaStream_t st) {
  RS_LAUNCH(bn_param_grads_kernel, (C + kThreads - 1) / kThreads, kThreads, st, dgamma, dbeta, local, C);
  const size_t n = size_t(B) * C * HW;
  if (!dx || n == 0) return;
  RS_LAUNCH(bn_backward_kernel, grid_for(n), kThreads, st, dx, dy, x, gamma, saved, global, p.count, C, HW, n);
}

}  // namespace rs
