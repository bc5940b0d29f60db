// conv2d, CPU. At stride 1 with 3x3 or 5x5 filters and >= 16 channels:
// Winograd (conv_winograd_cpu.cpp), 2.25-6.25x fewer multiply-adds. Otherwise
// batched lowering. Each thread takes groups of G consecutive
// samples (G from the shape alone: enough columns for an efficient GEMM) and
// lowers them into one matrix, so a layer is a few large single-threaded
// GEMMs per thread (OpenBLAS does not nest inside an OpenMP region):
//   col  (C*K*K, G*OH*OW)  row r = (c, kh, kw), column j = (g, oh, ow)
//   tmp  (OC, G*OH*OW)     = w (OC, C*K*K) . col        (forward)
//   dw  += dy_g (OC, G*OH*OW) . col^T;  dcol = w^T . dy_g  (backward)
// Layout stays NCHW (what cuDNN's default and the rest of the layers use):
// tmp is scattered to the samples' planes with the bias added, and dy is
// gathered the other way, both contiguous copies of OH*OW values.
// Lowering reads from a zero-padded copy of the sample's planes, so the copies
// have no bounds checks; at stride 1 a run of OW values is copied in fixed
// chunks of 16 that may overrun into the next run of the same sample (written
// later, in address order), or past its last run into the next sample's columns
// (lowered later) or into a gap of 16 columns at the end of each row (ld).
// Backward recomputes col rather than keeping the whole batch's (large)
// matrix. When dout is mostly zeros (after ReLU and max-pool: one value of
// each 2x2 window at most), backward instead loops over the non-zero values of
// dout, each a K x K x C multiply-add against a channels-last (NHWC) padded
// copy of the input (dw) or into one (din): FLOPs in proportion to the
// non-zeros, contiguous runs of C values, no lowering. Weight gradients are
// summed per thread, then over threads in thread order: results depend on the
// thread count, never on timing.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "blas_cpu.h"
#include "kernels_cpu.h"
#include "simd_cpu.h"

namespace rs {
namespace {

constexpr int kChunk = 16;  // values per fixed-size copy; also the slack after each buffer

// Samples lowered together: at least ~512 GEMM columns, at most 8 samples.
int group_size(const ConvShape& s) { return std::clamp((512 + s.OH * s.OW - 1) / (s.OH * s.OW), 1, 8); }
// Row length of col, tmp and dy: G samples' columns, then the gap (a multiple of 16).
size_t row_length(const ConvShape& s, int G) { return (size_t(G) * s.OH * s.OW + 2 * kChunk - 1) / kChunk * kChunk; }

struct Padded {
  int Hp, Wp;
  explicit Padded(const ConvShape& s) : Hp(s.H + 2 * s.pad), Wp(s.W + 2 * s.pad) {}
  size_t plane() const { return size_t(Hp) * Wp; }
};

// P (C, Hp, Wp) = one sample's planes with a zero border of `pad`.
template <class T> void pad_sample(T* P, const T* in, const ConvShape& s, const Padded& p) {
  if (s.pad == 0) {
    std::memcpy(P, in, sizeof(T) * size_t(s.C) * p.plane());
    return;
  }
  std::fill_n(P, size_t(s.C) * p.plane(), T(0));
  for (int c = 0; c < s.C; ++c)
    for (int h = 0; h < s.H; ++h)
      std::memcpy(P + c * p.plane() + size_t(h + s.pad) * p.Wp + s.pad, in + (size_t(c) * s.H + h) * s.W,
                  sizeof(T) * s.W);
}

// Columns [g*OHW, (g+1)*OHW) of col (row length ld) from the padded sample P.
template <class T> void lower(T* col, size_t ld, int g, const T* P, const ConvShape& s, const Padded& p) {
  const int KK = s.K * s.K, OHW = s.OH * s.OW;
  for (int r = 0; r < s.C * KK; ++r) {
    const int c = r / KK, kh = (r % KK) / s.K, kw = r % s.K;
    const T* src = P + c * p.plane() + size_t(kh) * p.Wp + kw;
    T* dst = col + r * ld + size_t(g) * OHW;
    for (int oh = 0; oh < s.OH; ++oh, dst += s.OW) {
      const T* row = src + size_t(oh) * s.stride * p.Wp;
      if (s.stride == 1) {
        for (int ow = 0; ow < s.OW; ow += kChunk) std::memcpy(dst + ow, row + ow, sizeof(T) * kChunk);
      } else {
        for (int ow = 0; ow < s.OW; ++ow) dst[ow] = row[ow * s.stride];
      }
    }
  }
}

// Columns of samples [n0, n0 + ng) of `in`, through the padded buffer P.
template <class T>
void lower_group(T* col, size_t ld, const T* in, int n0, int ng, T* P, const ConvShape& s, const Padded& p) {
  for (int g = 0; g < ng; ++g) {
    pad_sample(P, in + size_t(n0 + g) * s.C * s.H * s.W, s, p);
    lower(col, ld, g, P, s, p);
  }
}

// The adjoint of lower: din (C, H, W) of sample g from columns of dcol, through
// the padded accumulator P.
template <class T> void unlower(T* din, const T* dcol, size_t ld, int g, T* P, const ConvShape& s, const Padded& p) {
  const int KK = s.K * s.K, OHW = s.OH * s.OW;
  std::fill_n(P, size_t(s.C) * p.plane(), T(0));
  for (int r = 0; r < s.C * KK; ++r) {
    const int c = r / KK, kh = (r % KK) / s.K, kw = r % s.K;
    T* dst = P + c * p.plane() + size_t(kh) * p.Wp + kw;
    const T* src = dcol + r * ld + size_t(g) * OHW;
    for (int oh = 0; oh < s.OH; ++oh, src += s.OW) {
      T* row = dst + size_t(oh) * s.stride * p.Wp;
      if (s.stride == 1) {
#pragma omp simd
        for (int ow = 0; ow < s.OW; ++ow) row[ow] += src[ow];
      } else {
        for (int ow = 0; ow < s.OW; ++ow) row[ow * s.stride] += src[ow];
      }
    }
  }
  for (int c = 0; c < s.C; ++c)
    for (int h = 0; h < s.H; ++h)
      std::memcpy(din + (size_t(c) * s.H + h) * s.W, P + c * p.plane() + size_t(h + s.pad) * p.Wp + s.pad,
                  sizeof(T) * s.W);
}

// The sparse path is taken at or below this density of dout (after ReLU and a
// 2x2 max-pool it is at most 0.25; 0.4 leaves a margin, not a measured break-even).
constexpr double kSparseDensity = 0.4;
// ... and when a window row (K x C values) is long enough to vectorise (not conv1's 5 x 1).
constexpr int kSparseMinRun = 16;

// ... or, where Winograd applies, at or below this density: in training
// tf-mnist-cnn's conv2 sees a dout (after ReLU and a 2x2 max-pool) 10-20%
// dense with at most one value per pooling window, where the sparse path
// wins over Winograd F(4x4, 5x5) (docs/performance.md, "Why the thresholds").
constexpr double kSparseOverWinograd = 0.25;

// Winograd from this many channels: input channels (forward), input and
// output channels (backward); conv1's single channel stays on the GEMM.
constexpr int kWinogradMinC = 16;

}  // namespace

template <class T>
void conv2d_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s, FwdPath path) {
  if (winograd_applies(s) && (path == FwdPath::winograd || (path == FwdPath::automatic && s.C >= kWinogradMinC)))
    return conv2d_winograd_forward_cpu(out, in, w, b, s);
  const int CKK = int(s.col_rows()), OHW = s.OH * s.OW, G = group_size(s);
  const size_t out_sz = size_t(s.OC) * OHW, ld = row_length(s, G);
  const Padded p(s);
  const int groups = (s.B + G - 1) / G;
#pragma omp parallel
  {
    thread_local simd::Buffer<T> P, col, tmp;  // per-thread scratch, kept across calls (OpenMP threads persist)
    P.resize(size_t(s.C) * p.plane() + kChunk);
    col.resize(size_t(CKK) * ld);
    tmp.resize(size_t(s.OC) * ld);
#pragma omp for schedule(static)
    for (int gi = 0; gi < groups; ++gi) {
      const int n0 = gi * G, ng = std::min(G, s.B - n0), cols = ng * OHW;
      lower_group(col.data(), ld, in, n0, ng, P.data(), s, p);
      gemm(CblasNoTrans, CblasNoTrans, s.OC, cols, CKK, T(1), w, CKK, col.data(), int(ld), T(0), tmp.data(), int(ld));
      for (int g = 0; g < ng; ++g)
        for (int oc = 0; oc < s.OC; ++oc) {
          const T* src = tmp.data() + oc * ld + size_t(g) * OHW;
          T* dst = out + (n0 + g) * out_sz + size_t(oc) * OHW;
          const T bias = b[oc];
#pragma omp simd
          for (int q = 0; q < OHW; ++q) dst[q] = src[q] + bias;
        }
    }
  }
}

// The sparse path. acc is (OC, K, K, C) then (OC): weight gradients
// channels-last, converted back to (OC, C, K, K) in the sum over threads.
// In the channels-last padded copy a window row (K x C values) is contiguous
// at any stride.
template <class T>
void conv2d_backward_sparse(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, const ConvShape& s) {
  const int C = s.C, K = s.K, KK = K * K, OHW = s.OH * s.OW, run = K * C;
  const size_t in_sz = size_t(C) * s.H * s.W, out_sz = size_t(s.OC) * OHW, nw = size_t(s.OC) * C * KK;
  const Padded p(s);
  const size_t row = size_t(p.Wp) * C;  // one padded input row, channels-last
  // w channels-last: wt (OC, K, K, C)
  simd::Buffer<T> wt(din ? nw : 0);
  if (din)
#pragma omp parallel for schedule(static)
    for (int oc = 0; oc < s.OC; ++oc)
      for (int c = 0; c < C; ++c)
        for (int k = 0; k < KK; ++k) wt[(size_t(oc) * KK + k) * C + c] = w[(size_t(oc) * C + c) * KK + k];
  simd::ThreadSums<T> parts;
#pragma omp parallel
  {
    thread_local simd::Buffer<T> Q, acc, gs;  // per-thread scratch, kept across calls
    thread_local std::vector<const T*> ptr;
    thread_local std::vector<const T*> wins;  // each output position's window in Q
    Q.resize(size_t(C) * p.plane());
    acc.assign(nw + s.OC, T(0));
    ptr.resize(size_t(std::max(OHW, s.OC)) + 1);  // + 1: the branch-free lists write one past their count
    gs.resize(ptr.size());
    wins.resize(size_t(OHW));
    for (int q = 0; q < OHW; ++q)
      wins[q] = Q.data() + size_t(q / s.OW) * s.stride * row + size_t(q % s.OW) * s.stride * C;
    parts.mine(acc.data());
#pragma omp for schedule(static)
    for (int n = 0; n < s.B; ++n) {
      const T* dy = dout + n * out_sz;
      simd::to_channels_last(Q.data(), in + n * in_sz, C, s.H, s.W, s.pad, p.Hp, p.Wp, C);
      // dw[oc] += dy[oc, q] * window(q) over the non-zero dy[oc, q]
      for (int oc = 0; oc < s.OC; ++oc) {
        int count = 0;
        T bsum = 0;
        for (int q = 0; q < OHW; ++q) {  // branch-free: the zeros fall at random
          const T g = dy[size_t(oc) * OHW + q];
          bsum += g;
          ptr[count] = wins[q];
          gs[count] = g;
          count += g != T(0);
        }
        acc[nw + oc] += bsum;
        for (int kh = 0; kh < K; ++kh)
          simd::accumulate(acc.data() + (size_t(oc) * K + kh) * run, run, ptr.data(), kh * row, gs.data(), count);
      }
      if (!din) continue;
      // window(q) of the padded din += dy[oc, q] * w[oc] over the non-zero dy[oc, q]
      std::fill(Q.begin(), Q.end(), T(0));
      for (int q = 0; q < OHW; ++q) {
        int count = 0;
        for (int oc = 0; oc < s.OC; ++oc) {
          const T g = dy[size_t(oc) * OHW + q];
          ptr[count] = wt.data() + size_t(oc) * KK * C;
          gs[count] = g;
          count += g != T(0);
        }
        if (!count) continue;
        const int oh = q / s.OW, ow = q % s.OW;
        T* win = Q.data() + size_t(oh) * s.stride * row + size_t(ow) * s.stride * C;
        for (int kh = 0; kh < K; ++kh)
          simd::accumulate(win + kh * row, run, ptr.data(), size_t(kh) * run, gs.data(), count);
      }
      T* dx = din + n * in_sz;
      for (int h = 0; h < s.H; ++h)
        for (int wi = 0; wi < s.W; ++wi) {
          const T* src = Q.data() + (size_t(h + s.pad) * p.Wp + wi + s.pad) * C;
          for (int c = 0; c < C; ++c) dx[(size_t(c) * s.H + h) * s.W + wi] = src[c];
        }
    }
  }
#pragma omp parallel for schedule(static)
  for (int oc = 0; oc < s.OC; ++oc) {  // acc (oc, k, c) -> dw (oc, c, k), summed in thread order
    for (int c = 0; c < C; ++c)
      for (int k = 0; k < KK; ++k) dw[(size_t(oc) * C + c) * KK + k] = parts.at((size_t(oc) * KK + k) * C + c);
    db[oc] = parts.at(nw + oc);
  }
}

namespace {

// din by Winograd: the full correlation of dout with the filters flipped and
// transposed, (C, OC, K, K), is the forward convolution of dout at padding
// K - 1 - pad (stride 1), no bias.
template <class T> void winograd_input_grad(T* din, const T* dout, const T* w, const ConvShape& s) {
  const int KK = s.K * s.K;
  simd::Buffer<T> wf(size_t(s.OC) * s.C * KK), zero(size_t(s.C), T(0));
  for (int oc = 0; oc < s.OC; ++oc)
    for (int c = 0; c < s.C; ++c)
      for (int k = 0; k < KK; ++k) wf[(size_t(c) * s.OC + oc) * KK + KK - 1 - k] = w[(size_t(oc) * s.C + c) * KK + k];
  const ConvShape t{s.B, s.OC, s.OH, s.OW, s.C, s.K, 1, s.K - 1 - s.pad, s.H, s.W};
  conv2d_winograd_forward_cpu(din, dout, wf.data(), zero.data(), t);
}

}  // namespace

template <class T> void conv2d_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* in, const T* w,
                                            const ConvShape& s, GradPath path) {
  GradPath use = path;
  if (path == GradPath::automatic) {
    const bool wino = winograd_applies(s) && s.C >= kWinogradMinC && s.OC >= kWinogradMinC;
    const double d = s.K * s.C >= kSparseMinRun ? simd::density(dout, size_t(s.B) * s.OC * s.OH * s.OW) : 1.0;
    use = d <= (wino ? kSparseOverWinograd : kSparseDensity) ? GradPath::sparse
          : wino                                             ? GradPath::winograd
                                                             : GradPath::gemm;
  }
  if (use == GradPath::winograd && winograd_applies(s)) {
    if (din) winograd_input_grad(din, dout, w, s);
    return conv2d_winograd_weight_grad_cpu(dw, db, dout, in, s);
  }
  if (use == GradPath::sparse) return conv2d_backward_sparse(din, dw, db, dout, in, w, s);
  const int CKK = int(s.col_rows()), OHW = s.OH * s.OW, G = group_size(s);
  const size_t in_sz = size_t(s.C) * s.H * s.W, out_sz = size_t(s.OC) * OHW, nw = size_t(s.OC) * CKK;
  const size_t ld = row_length(s, G);
  const Padded p(s);
  const int groups = (s.B + G - 1) / G;
  simd::ThreadSums<T> parts;
#pragma omp parallel
  {
    // per-thread scratch, kept across calls: dy (OC, G*OHW); acc (OC, CKK) weight grads, then (OC) bias grads
    thread_local simd::Buffer<T> P, col, dy, acc;
    P.resize(size_t(s.C) * p.plane() + kChunk);
    col.resize(size_t(CKK) * ld);
    dy.resize(size_t(s.OC) * ld);
    acc.assign(nw + s.OC, T(0));
    parts.mine(acc.data());
#pragma omp for schedule(static)
    for (int gi = 0; gi < groups; ++gi) {
      const int n0 = gi * G, ng = std::min(G, s.B - n0), cols = ng * OHW;
      lower_group(col.data(), ld, in, n0, ng, P.data(), s, p);
      for (int g = 0; g < ng; ++g) {
        for (int oc = 0; oc < s.OC; ++oc)
          std::memcpy(dy.data() + oc * ld + size_t(g) * OHW, dout + (n0 + g) * out_sz + size_t(oc) * OHW,
                      sizeof(T) * OHW);
      }
      gemm(CblasNoTrans, CblasTrans, s.OC, CKK, cols, T(1), dy.data(), int(ld), col.data(), int(ld), T(1), acc.data(),
           CKK);
      for (int oc = 0; oc < s.OC; ++oc) {
        const T* d = dy.data() + oc * ld;
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int q = 0; q < cols; ++q) sum += d[q];
        acc[nw + oc] += sum;
      }
      if (din) {
        gemm(CblasTrans, CblasNoTrans, CKK, cols, s.OC, T(1), w, CKK, dy.data(), int(ld), T(0), col.data(), int(ld));
        for (int g = 0; g < ng; ++g) unlower(din + (n0 + g) * in_sz, col.data(), ld, g, P.data(), s, p);
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < nw + s.OC; ++i) (i < nw ? dw[i] : db[i - nw]) = parts.at(i);
}

template void conv2d_forward_cpu<float>(float*, const float*, const float*, const float*, const ConvShape&, FwdPath);
template void conv2d_forward_cpu<double>(double*, const double*, const double*, const double*, const ConvShape&,
                                         FwdPath);
template void conv2d_backward_cpu<float>(float*, float*, float*, const float*, const float*, const float*,
                                         const ConvShape&, GradPath);
template void conv2d_backward_cpu<double>(double*, double*, double*, const double*, const double*, const double*,
                                          const ConvShape&, GradPath);

}  // namespace rs
