// CPU reference implementations of every layer family: the ones the tests
// trust. Conventions:
//   - tensors are dense row-major, activations (B, C, H, W) = NCHW;
//   - parameter gradients are overwritten (=), never accumulated: each
//     parameter belongs to exactly one layer and the model zeroes nothing;
//   - an input gradient pointer may be null (first layer: not needed);
//   - T is float in the program and double in the gradient-check tests;
//   - loops are parallel with OpenMP over independent outputs only, so results
//     do not depend on thread timing (bit-identical reruns).
// The CUDA versions (kernels/*.cu) take the same arguments plus a stream.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hd_math.h"

namespace rs {

struct ConvShape {
  int B, C, H, W;  // input (B, C, H, W)
  int OC, K, stride, pad;
  int OH, OW;  // output (B, OC, OH, OW)
  size_t col_rows() const { return size_t(C) * K * K; }
};

struct PoolShape {
  int B, C, H, W;  // input (B, C, H, W)
  int K, stride, pad;
  int OH, OW;  // output (B, C, OH, OW)
};

// Backward paths of conv2d, with the same results up to rounding: GEMMs, or
// loops over the non-zero values of dout only (most of it is zero after ReLU
// and max-pool). `automatic` picks by dout's density. The dense layer's
// backward has the gemm and sparse paths too (dout after ReLU and dropout).
// `winograd` (stride 1, K = 3 or 5; conv_winograd_cpu.cpp): din by the
// forward's kernel on dout with the filters flipped and transposed, dw and db
// by F(KxK, 4x4) or F(3x3, 2x2). `automatic`: sparse when dout is sparse enough (a lower
// threshold where Winograd applies, with >= 16 input and output channels),
// else Winograd where it applies, else the GEMMs.
enum class GradPath { automatic, gemm, sparse, winograd };
// Forward paths of conv2d, the same up to rounding: lowering and GEMMs, or
// Winograd F(4x4, 5x5) or F(2x2, 3x3) (stride 1; conv_winograd_cpu.cpp).
// `automatic` takes Winograd where it applies and the input has >= 16 channels
// (fewer: the transforms cost more than the products they save).
enum class FwdPath { automatic, gemm, winograd };

// ---- dense: out (B, OUT) = in (B, IN) . w^T (IN, OUT) + b (OUT); w is (OUT, IN)
template <class T> void dense_forward_cpu(T* out, const T* in, const T* w, const T* b, int B, int IN, int OUT);
// din and dw may be null (not computed).
template <class T> void dense_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, int B, int IN,
                                           int OUT, GradPath path = GradPath::automatic);
// Rows [o0, o1) of the weight gradient (OUT, IN) alone, written at dw (row o
// at dw + (o - o0) * IN): what dense_backward_cpu writes there.
template <class T> void dense_weight_grad_cpu(T* dw, const T* dout, const T* in, int B, int IN, int OUT, int o0, int o1,
                                              GradPath path = GradPath::automatic);
// The path `automatic` takes for this dout (gemm or sparse, by its density).
template <class T> GradPath dense_grad_path(const T* dout, int B, int OUT);

// ---- conv2d: w (OC, C, K, K), b (OC); scratch is per thread, inside.
// Forward and backward: Winograd where it applies (FwdPath, GradPath), else
// lowering and GEMMs, or for the backward (GradPath::sparse) direct loops over
// the non-zero values of dout (a conv followed by ReLU and a 2x2 max-pool: at
// most one value in four survives the pool).
template <class T> void conv2d_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s,
                                           FwdPath path = FwdPath::automatic);
bool winograd_applies(const ConvShape& s);
template <class T> void conv2d_winograd_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s);
template <class T> void conv2d_winograd_weight_grad_cpu(T* dw, T* db, const T* dout, const T* in, const ConvShape& s);
template <class T> void conv2d_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* in, const T* w,
                                            const ConvShape& s, GradPath path = GradPath::automatic);

// ---- max-pool: argmax (B, C, OH, OW) holds the winning input offset in its plane
template <class T> void maxpool_forward_cpu(T* out, int32_t* argmax, const T* in, const PoolShape& s);
template <class T> void maxpool_backward_cpu(T* din, const T* dout, const int32_t* argmax, const PoolShape& s);

// ---- activations over n elements; backward reads the forward output y, and the input x where the
// activation says so (hd_math.h, kActivations)
template <class T> void activation_forward_cpu(Act a, T* y, const T* x, size_t n);
template <class T> void activation_backward_cpu(Act a, T* dx, const T* dy, const T* x, const T* y, size_t n);

// ---- dropout over B samples of `per_sample` elements; sample b of the batch
// has global index first_sample + b (see dropout_scale in math.h)
template <class T>
void dropout_forward_cpu(T* y, const T* x, float p, uint64_t key, int B, size_t per_sample, uint64_t first_sample);
template <class T>
void dropout_backward_cpu(T* dx, const T* dy, float p, uint64_t key, int B, size_t per_sample, uint64_t first_sample);

// ---- softmax cross-entropy: logits (B, K), labels (B). Writes per-sample loss
// (B), predicted class (B) and, when dlogits is not null, the gradient of
// scale * sum(loss) with respect to the logits.
template <class T> void softmax_xent_cpu(T* dlogits, T* loss, int32_t* pred, const T* logits, const int32_t* labels,
                                         int B, int K, T scale, T eps);

// ---- batch normalisation over (B, C, HW), per channel (hd_math.h).
// bn_sums: sums (2C) = [sum x, sum x^2] when b is null, else [sum a, sum a * xhat(b)]
// (backward: a = dy, b = x, xhat from saved = [mean, inv_std] (2C)).
// bn_forward: train: stats from sums over p.count values, running estimates
// moved (unless null); eval: the running estimates. saved = the stats used.
// bn_backward: dbeta, dgamma = this rank's sums `local`; dx (may be null)
// from the sums over every rank, `global`.
struct BnParams {
  bool train;
  double count;  // values per channel in the global batch (B_global * HW)
  double momentum, eps;
};
template <class T> void bn_sums_cpu(double* sums, const T* a, const T* b, const T* saved, int B, int C, size_t HW);
template <class T> void bn_forward_cpu(T* y, const T* x, const T* gamma, const T* beta, T* saved, float* running_mean,
                                       float* running_var, const double* sums, const BnParams& p, int B, int C,
                                       size_t HW);
template <class T> void bn_backward_cpu(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                                        const T* saved, const double* local, const double* global, const BnParams& p,
                                        int B, int C, size_t HW);

// ---- optimizers over a flat buffer of n parameters
void sgd_update_cpu(float* p, float* v, const float* g, size_t n, const SgdParams& o);
void adam_update_cpu(float* p, float* m, float* v, const float* g, size_t n, const AdamParams& o);

// Floating-point environment (fpenv_cpu.cpp): denormals flushed to zero (x86
// FTZ + DAZ) on the calling thread; on it and every OpenMP thread (true when
// all have it); whether the calling thread has it.
void flush_denormals() noexcept;
bool flush_denormals_everywhere();
bool denormals_flushed() noexcept;

// The data caches of one core (caches_cpu.cpp): L1d and L2 in bytes, and the
// last-level cache divided by the logical CPUs sharing it (0 if none; a
// virtual machine may report its host's whole L3 here). From sysfs, else
// sysconf, else assumed (32 KB, 512 KB): `source` says which.
struct CacheSizes {
  size_t l1d, l2, l3_share;
  const char* source;
};
const CacheSizes& cpu_caches();

// ---- batch assembly: out (B, C, HW) = normalize(data[idx[b]]) with per-channel
// mean and inv_std; data is (N, C, HW) uint8 (scale 1/255) or float (scale 1)
void gather_normalize_cpu(float* out, const uint8_t* data, const int64_t* idx, int B, int C, size_t HW,
                          const float* mean, const float* inv_std);
void gather_normalize_cpu(float* out, const float* data, const int64_t* idx, int B, int C, size_t HW, const float* mean,
                          const float* inv_std);
// The same with augmentation (hd_math.h): sample b drawn with augment_draw(key, idx[b], pad, flip), H x W planes.
void gather_augment_cpu(float* out, const uint8_t* data, const int64_t* idx, int B, int C, int H, int W,
                        const float* mean, const float* inv_std, int pad, bool flip, uint64_t key);
void gather_augment_cpu(float* out, const float* data, const int64_t* idx, int B, int C, int H, int W,
                        const float* mean, const float* inv_std, int pad, bool flip, uint64_t key);

}  // namespace rs
