// conv2d, CPU: batched lowering. Each thread takes groups of G consecutive
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
// matrix. Weight gradients are summed per thread, then over threads in thread
// order: results depend on the thread count, never on timing.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "blas_cpu.h"
#include "kernels_cpu.h"

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

// Per-thread scratch, kept across calls (OpenMP threads are persistent).
template <class T> std::vector<T>& scratch(int which) {
  thread_local std::vector<T> buf[4];
  return buf[which];
}

}  // namespace

template <class T> void conv2d_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s) {
  const int CKK = int(s.col_rows()), OHW = s.OH * s.OW, G = group_size(s);
  const size_t in_sz = size_t(s.C) * s.H * s.W, out_sz = size_t(s.OC) * OHW, ld = row_length(s, G);
  const Padded p(s);
  const int groups = (s.B + G - 1) / G;
#pragma omp parallel
  {
    std::vector<T>& P = scratch<T>(0);
    std::vector<T>& col = scratch<T>(1);
    std::vector<T>& tmp = scratch<T>(2);
    P.resize(size_t(s.C) * p.plane() + kChunk);
    col.resize(size_t(CKK) * ld);
    tmp.resize(size_t(s.OC) * ld);
#pragma omp for schedule(static)
    for (int gi = 0; gi < groups; ++gi) {
      const int n0 = gi * G, ng = std::min(G, s.B - n0), cols = ng * OHW;
      for (int g = 0; g < ng; ++g) {
        pad_sample(P.data(), in + (n0 + g) * in_sz, s, p);
        lower(col.data(), ld, g, P.data(), s, p);
      }
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

template <class T>
void conv2d_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, const ConvShape& s) {
  const int CKK = int(s.col_rows()), OHW = s.OH * s.OW, G = group_size(s);
  const size_t in_sz = size_t(s.C) * s.H * s.W, out_sz = size_t(s.OC) * OHW, nw = size_t(s.OC) * CKK;
  const size_t ld = row_length(s, G);
  const Padded p(s);
  const int groups = (s.B + G - 1) / G;
  std::vector<T*> parts(size_t(omp_get_max_threads()), nullptr);
#pragma omp parallel
  {
    std::vector<T>& P = scratch<T>(0);
    std::vector<T>& col = scratch<T>(1);
    std::vector<T>& dy = scratch<T>(2);   // (OC, G*OHW)
    std::vector<T>& acc = scratch<T>(3);  // (OC, CKK) weight grads, then (OC) bias grads
    P.resize(size_t(s.C) * p.plane() + kChunk);
    col.resize(size_t(CKK) * ld);
    dy.resize(size_t(s.OC) * ld);
    acc.assign(nw + s.OC, T(0));
    parts[size_t(omp_get_thread_num())] = acc.data();
#pragma omp for schedule(static)
    for (int gi = 0; gi < groups; ++gi) {
      const int n0 = gi * G, ng = std::min(G, s.B - n0), cols = ng * OHW;
      for (int g = 0; g < ng; ++g) {
        pad_sample(P.data(), in + (n0 + g) * in_sz, s, p);
        lower(col.data(), ld, g, P.data(), s, p);
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
  for (size_t i = 0; i < nw + s.OC; ++i) {
    T sum = 0;
    for (T* q : parts)
      if (q) sum += q[i];
    (i < nw ? dw[i] : db[i - nw]) = sum;
  }
}

template void conv2d_forward_cpu<float>(float*, const float*, const float*, const float*, const ConvShape&);
template void conv2d_forward_cpu<double>(double*, const double*, const double*, const double*, const ConvShape&);
template void conv2d_backward_cpu<float>(float*, float*, float*, const float*, const float*, const float*,
                                         const ConvShape&);
template void conv2d_backward_cpu<double>(double*, double*, double*, const double*, const double*, const double*,
                                          const ConvShape&);

}  // namespace rs
