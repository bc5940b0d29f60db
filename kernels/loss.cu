// Fused softmax + cross-entropy forward and backward, with accuracy counting,
// on the GPU: a thread per row (hd_math.h's softmax_xent_row), a block
// reduction of loss and correct count, one double atomicAdd per block (the
// summation order of the logged loss may vary; gradients do not).
#include "kernels_gpu.h"
#include "launch.cuh"

namespace rs {

__global__ void softmax_xent_kernel(float* dlogits, const float* logits, const int32_t* labels, int B, int K,
                                    float scale, float eps, double* metrics) {
  __shared__ double loss_part[kThreads], hit_part[kThreads];
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  double loss = 0, hit = 0;
  if (b < B) {
    int am = 0;
    loss = softmax_xent_row(logits + size_t(b) * K, labels[b], K, scale, eps,
                            dlogits ? dlogits + size_t(b) * K : nullptr, &am);
    hit = am == labels[b];
  }
  loss_part[threadIdx.x] = loss;
  hit_part[threadIdx.x] = hit;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) {
      loss_part[threadIdx.x] += loss_part[threadIdx.x + w];
      hit_part[threadIdx.x] += hit_part[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomicAdd(metrics, loss_part[0]);
    atomicAdd(metrics + 1, hit_part[0]);
  }
}

void softmax_xent_gpu(float* dlogits, const float* logits, const int32_t* labels, int B, int K, float scale, float eps,
                      double* metrics, cudaStream_t st) {
  RS_LAUNCH(softmax_xent_kernel, (B + kThreads - 1) / kThreads, kThreads, st, dlogits, logits, labels, B, K, scale, eps,
            metrics);
}

}  // namespace rs
