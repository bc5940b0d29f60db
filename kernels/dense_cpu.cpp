// Dense layer, CPU. w is (OUT, IN) as in PyTorch. The three products use the
// register-blocked kernel of simd_cpu.h (6 rows x 4 vectors of sums; ~116
// GFLOP/s from L1 on one core here; at batch 64 it ran the CNN's and the MLP's
// dense products at 100-110 GFLOP/s where OpenBLAS 0.3.21 gave 78-100). Each
// thread owns a contiguous share of the output and sums over k in one fixed
// order: results do not depend on the thread count (except a forward pass of
// >= kBlasBatch samples, which OpenBLAS computes).
//   din (B, IN)  = dout . w             256-row blocks of w (64 KB per column block)
//   dw (OUT, IN) = dout^T . in          six-row slabs of dw written whole, over
//                                       column chunks of in that fit L2 (past the
//                                       caches when dw is larger than 8 MB)
//   out^T (OUT, Bp) = w . in^T          in^T packed (IN, Bp) in 16 x 16 tiles, in
//                                       blocks of k that fit L2; transposed back
//                                       with the bias added (OUT < B: out = in . w^T)
// A backward whose dout is at most 30% non-zero (ReLU then dropout) takes
// loops over the non-zero values instead (dense_backward_sparse).
#include <omp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "blas_cpu.h"
#include "kernels_cpu.h"
#include "simd_cpu.h"

namespace rs {
namespace {

// Forward batches from this size (evaluation's 256) go to OpenBLAS's sgemm;
// training's (64 and below) to the kernel here, faster there
// (docs/performance.md, "Why the thresholds").
constexpr int kBlasBatch = 128;

// A weight gradient of more than this is written past the caches
// (simd::Store::stream): it is read once, by the allreduce or the optimizer,
// after backward has moved on, and at 12.8 MB (tf-mnist-cnn's dense1) it
// does not stay in L3 anyway; the streaming stores skip reading each line
// before overwriting it.
constexpr size_t kStreamBytes = size_t(8) << 20;

constexpr int kCols = 4 * simd::kV<float>;  // columns per block of din (a whole 6 x 4-vector pass)

// The calling thread's share [lo, hi) of [0, n) inside a parallel region:
// contiguous, in whole units (the last may be short), balanced to one unit.
// Each thread then walks its share through every block of k: no barrier
// between blocks, and each output's sum runs over k in the same order at any
// thread count.
std::pair<int, int> share(int n, int unit) {
  const int units = (n + unit - 1) / unit, t = omp_get_thread_num(), T = omp_get_num_threads();
  return {std::min(n, units * t / T * unit), std::min(n, units * (t + 1) / T * unit)};
}

}  // namespace

template <class T> void dense_forward_cpu(T* out, const T* in, const T* w, const T* b, int B, int IN, int OUT) {
  // The product is taken with the smaller side packed transposed, as the
  // kernel's streamed operand: out^T = w . in^T (in^T is IN x Bp), or, for a
  // layer narrower than the batch (the classifier), out = in . w^T.
  if (B == 0 || OUT == 0) return;
  if (B >= kBlasBatch) {  // out (B, OUT) = b, then += in . w^T
    for (int i = 0; i < B; ++i) std::copy(b, b + OUT, out + size_t(i) * OUT);
    gemm(CblasNoTrans, CblasTrans, B, OUT, IN, T(1), in, IN, w, IN, T(1), out, OUT);
    return;
  }
  const bool narrow = OUT < B;
  const int M = narrow ? B : OUT, N = narrow ? OUT : B;  // rows, columns of the product
  const int Np = int(simd::round_up(size_t(N), size_t(simd::kV<T>)));
  const T* a = narrow ? in : w;                  // rows of the product: samples, or rows of w
  const T* bt = narrow ? w : in;                 // transposed into the packed (IN, Np)
  const int kb = std::max(64, int(32768 / Np));  // rows of the packed operand per block: ~128 KB, stays in L2
  thread_local simd::Buffer<T> pack, prod;
  pack.resize(size_t(IN) * Np);
  prod.resize(size_t(M) * Np);
  T *P = pack.data(), *C = prod.data();  // the calling thread's buffers, shared with the team
#pragma omp parallel for schedule(static)
  for (int k0 = 0; k0 < IN; k0 += 16) {  // 16 x 16 tiles: both sides touch whole cache lines
    for (int j0 = 0; j0 < N; j0 += 16)
      for (int j = j0; j < std::min(j0 + 16, N); ++j)
        for (int k = k0; k < std::min(k0 + 16, IN); ++k) P[size_t(k) * Np + j] = bt[size_t(j) * IN + k];
    for (int k = k0; k < std::min(k0 + 16, IN); ++k) std::fill(P + size_t(k) * Np + N, P + size_t(k + 1) * Np, T(0));
  }
#pragma omp parallel
  {
    const auto [r0, r1] = share(M, simd::kRows);
    for (int k0 = 0; k0 < IN && r0 < r1; k0 += kb)
      simd::gemm(C + size_t(r0) * Np, Np, a + size_t(r0) * IN + k0, IN, 1, P + size_t(k0) * Np, Np, r1 - r0, Np,
                 std::min(kb, IN - k0), k0 > 0 ? simd::Store::add : simd::Store::set);
    if (narrow)  // out = C + bias, this thread's rows
      for (int i = r0; i < r1; ++i)
        for (int o = 0; o < OUT; ++o) out[size_t(i) * OUT + o] = C[size_t(i) * Np + o] + b[o];
    else
      for (int i = 0; i < B; ++i)
        for (int o = r0; o < r1; ++o) out[size_t(i) * OUT + o] = C[size_t(o) * Np + i] + b[o];
  }
}

namespace {

// The sparse backward is taken at or below this density of dout (a dense
// layer followed by ReLU and dropout: tf-mnist-cnn's dense1 ~25%), below the
// break-even with the GEMM (docs/performance.md, "Why the thresholds").
constexpr double kSparseDensity = 0.3;

// Non-zero values of dout by sample or by output: entry p of group r (p in
// [start[r], start[r + 1])) is value[p] times the row src[p] (a row of w for
// a sample's outputs, a sample's input row for an output); by sample,
// index[p] is the output.
template <class T> struct Sparse {
  std::vector<int> start, index;
  simd::Buffer<T> value;
  std::vector<const T*> src;
};

// The sparse backward: only dout's non-zero values, by output (CSC: dw) and
// by sample (CSR: din). dw's row o sums the input rows of the samples with a
// non-zero dout[:, o], in 64-column blocks (a block of every sample's input is
// 16 KB at batch 64: in L1 across the rows); din's row i sums the rows of w of
// its non-zero outputs, in 64-column blocks and 128-row blocks of w (32 KB).
// Sums in a fixed order (samples, outputs ascending): the same at any thread count.
template <class T>
void weight_grad_sparse(T* dw, const T* dout, const T* in, int B, int IN, int OUT, int o0, int o1, simd::Store st) {
  thread_local Sparse<T> by_output;
  Sparse<T>& cols = by_output;  // outputs [o0, o1)
  const int n = o1 - o0;
  cols.start.assign(size_t(n) + 1, 0);
  for (int i = 0; i < B; ++i)
    for (int o = o0; o < o1; ++o) cols.start[size_t(o - o0) + 1] += dout[size_t(i) * OUT + o] != T(0);
  for (int o = 0; o < n; ++o) cols.start[size_t(o) + 1] += cols.start[size_t(o)];
  const size_t nz = size_t(cols.start[size_t(n)]);
  cols.value.resize(nz), cols.src.resize(nz);
  std::vector<int> next(cols.start.begin(), cols.start.end() - 1);
  for (int i = 0; i < B; ++i)
    for (int o = o0; o < o1; ++o)
      if (const T v = dout[size_t(i) * OUT + o]; v != T(0)) {
        const size_t q = size_t(next[size_t(o - o0)]++);
        cols.value[q] = v, cols.src[q] = in + size_t(i) * IN;
      }
#pragma omp parallel
  {
    const auto [r0, r1] = share(n, 1);
    for (int c = 0; c < IN && r0 < r1; c += kCols)
      for (int r = r0; r < r1; ++r) {
        const int p0 = cols.start[size_t(r)];
        simd::accumulate(dw + size_t(r) * IN + c, std::min(kCols, IN - c), cols.src.data() + p0, size_t(c),
                         cols.value.data() + p0, cols.start[size_t(r) + 1] - p0, st);
      }
    if (st == simd::Store::stream) simd::stream_fence();
  }
}

template <class T> void input_grad_sparse(T* din, const T* dout, const T* w, int B, int IN, int OUT) {
  constexpr int kRowBlock = 128;
  thread_local Sparse<T> by_sample;
  Sparse<T>& rows = by_sample;
  rows.start.assign(size_t(B) + 1, 0);
  for (int i = 0; i < B; ++i)
    for (int o = 0; o < OUT; ++o) rows.start[size_t(i) + 1] += dout[size_t(i) * OUT + o] != T(0);
  for (int i = 0; i < B; ++i) rows.start[size_t(i) + 1] += rows.start[size_t(i)];
  const size_t nz = size_t(rows.start[size_t(B)]);
  rows.index.resize(nz), rows.value.resize(nz), rows.src.resize(nz);
  size_t p = 0;
  for (int i = 0; i < B; ++i)
    for (int o = 0; o < OUT; ++o)
      if (const T v = dout[size_t(i) * OUT + o]; v != T(0))
        rows.index[p] = o, rows.value[p] = v, rows.src[p++] = w + size_t(o) * IN;
#pragma omp parallel
  {
    const auto [j0, j1] = share(IN, kCols);
    std::vector<int> at(static_cast<size_t>(B));  // each sample's next non-zero
    for (int c = j0; c < j1; c += kCols) {
      for (int i = 0; i < B; ++i) at[size_t(i)] = rows.start[size_t(i)];
      for (int r0 = 0; r0 < OUT; r0 += kRowBlock)
        for (int i = 0; i < B; ++i) {
          const int p0 = at[size_t(i)], end = rows.start[size_t(i) + 1];
          int q = p0;
          while (q < end && rows.index[size_t(q)] < r0 + kRowBlock) ++q;
          simd::accumulate(din + size_t(i) * IN + c, std::min(kCols, j1 - c), rows.src.data() + p0, size_t(c),
                           rows.value.data() + p0, q - p0, r0 > 0 ? simd::Store::add : simd::Store::set);
          at[size_t(i)] = q;
        }
    }
  }
}

// `automatic` resolved by dout's density
template <class T> GradPath resolve(GradPath path, const T* dout, int B, int OUT) {
  if (path != GradPath::automatic) return path;
  return simd::density(dout, size_t(B) * OUT) <= kSparseDensity ? GradPath::sparse : GradPath::gemm;
}

template <class T>
void weight_grad(T* dw, const T* dout, const T* in, int B, int IN, int OUT, int o0, int o1, GradPath path) {
  // a result past the caches, read once later: streamed
  const simd::Store st = size_t(o1 - o0) * IN * sizeof(T) > kStreamBytes ? simd::Store::stream : simd::Store::set;
  if (path == GradPath::sparse) return weight_grad_sparse(dw, dout, in, B, IN, OUT, o0, o1, st);
  const int chunk = int(simd::round_up(size_t(std::max(64, 65536 / std::max(B, 1))), size_t(kCols)));
#pragma omp parallel
  {
    // dw[r0, r1)[:, j0, j0 + n) = dout[:, o0 + (r0, r1))^T . in[:, j0, j0 + n): this thread's rows of dw,
    // written whole; in's column chunk (~256 KB) stays in L2 across them.
    const auto [r0, r1] = share(o1 - o0, simd::kRows);
    for (int j0 = 0; j0 < IN && r0 < r1; j0 += chunk)
      simd::gemm(dw + size_t(r0) * IN + j0, IN, dout + o0 + r0, 1, OUT, in + j0, IN, r1 - r0, std::min(chunk, IN - j0),
                 B, st);
    if (st == simd::Store::stream) simd::stream_fence();
  }
}

}  // namespace

template <class T> void dense_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, int B, int IN,
                                           int OUT, GradPath path) {
  std::fill(db, db + OUT, T(0));
  for (int i = 0; i < B; ++i)
    for (int o = 0; o < OUT; ++o) db[o] += dout[size_t(i) * OUT + o];
  path = resolve(path, dout, B, OUT);
  if (dw) weight_grad(dw, dout, in, B, IN, OUT, 0, OUT, path);
  if (!din) return;
  if (path == GradPath::sparse) return input_grad_sparse(din, dout, w, B, IN, OUT);
#pragma omp parallel
  {
    // din[:, j, j + 64) (+)= dout[:, k0, k0 + 256) . w[k0, k0 + 256)[:, j, j + 64): a 64 KB block of w,
    // in L2 across every row pass, over this thread's column blocks
    const auto [j0, j1] = share(IN, kCols);
    for (int j = j0; j < j1; j += kCols)
      for (int k0 = 0; k0 < OUT; k0 += 256)
        simd::gemm(din + j, IN, dout + k0, OUT, 1, w + size_t(k0) * IN + j, IN, B, std::min(kCols, j1 - j),
                   std::min(256, OUT - k0), k0 > 0 ? simd::Store::add : simd::Store::set);
  }
}

template <class T>
void dense_weight_grad_cpu(T* dw, const T* dout, const T* in, int B, int IN, int OUT, int o0, int o1, GradPath path) {
  weight_grad(dw, dout, in, B, IN, OUT, o0, o1, resolve(path, dout, B, OUT));
}

template <class T> GradPath dense_grad_path(const T* dout, int B, int OUT) {
  return resolve(GradPath::automatic, dout, B, OUT);
}

template void dense_forward_cpu<float>(float*, const float*, const float*, const float*, int, int, int);
template void dense_forward_cpu<double>(double*, const double*, const double*, const double*, int, int, int);
template void dense_backward_cpu<float>(float*, float*, float*, const float*, const float*, const float*, int, int, int,
                                        GradPath);
template void dense_backward_cpu<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                         int, int, GradPath);
template void dense_weight_grad_cpu<float>(float*, const float*, const float*, int, int, int, int, int, GradPath);
template void dense_weight_grad_cpu<double>(double*, const double*, const double*, int, int, int, int, int, GradPath);
template GradPath dense_grad_path<float>(const float*, int, int);
template GradPath dense_grad_path<double>(const double*, int, int);

}  // namespace rs
