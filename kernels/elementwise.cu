// Activations and dropout on the GPU: grid-stride loops over hd_math.h.
#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {

template <Act A> __global__ void act_forward_kernel(float* y, const float* x, size_t n) {
  RS_GRID_STRIDE(i, n) y[i] = act_forward(A, x[i]);
}
template <Act A>
__global__ void act_backward_kernel(float* dx, const float* dy, const float* x, const float* y, size_t n) {
  RS_GRID_STRIDE(i, n) dx[i] = act_backward(A, x[i], y[i], dy[i]);
}

// y = x * mask(key, global sample, element): forward and backward alike.
__global__ void dropout_kernel(float* y, const float* x, float p, uint64_t key, size_t per_sample,
                               uint64_t first_sample, size_t n) {
  RS_GRID_STRIDE(i, n) y[i] = x[i] * dropout_scale<float>(key, first_sample + i / per_sample, i % per_sample, p);
}

void activation_forward_gpu(Act a, float* y, const float* x, size_t n, cudaStream_t st) {
  with_act(a, [&](auto A) { RS_LAUNCH(act_forward_kernel<decltype(A)::value>, grid_for(n), kThreads, st, y, x, n); });
}

void activation_backward_gpu(Act a, float* dx, const float* dy, const float* x, const float* y, size_t n,
                             cudaStream_t st) {
  with_act(a, [&](auto A) {
    RS_LAUNCH(act_backward_kernel<decltype(A)::value>, grid_for(n), kThreads, st, dx, dy, x, y, n);
  });
}

void dropout_forward_gpu(float* y, const float* x, float p, uint64_t key, int B, size_t per_sample,
                         uint64_t first_sample, cudaStream_t st) {
  const size_t n = size_t(B) * per_sample;
  RS_LAUNCH(dropout_kernel, grid_for(n), kThreads, st, y, x, p, key, per_sample, first_sample, n);
}

void dropout_backward_gpu(float* dx, const float* dy, float p, uint64_t key, int B, size_t per_sample,
                          uint64_t first_sample, cudaStream_t st) {
  dropout_forward_gpu(dx, dy, p, key, B, per_sample, first_sample, st);
}

}  // namespace rs
