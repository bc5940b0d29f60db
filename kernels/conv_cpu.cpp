// conv2d, CPU: parallel over samples; each thread lowers one sample at a time
// with im2col into its own cache-sized buffer and runs single-threaded GEMMs
// (OpenBLAS does not nest inside an OpenMP region):
//   col_b  (C*K*K, OH*OW)   row r = (c, kh, kw), column p = (oh, ow)
//   out_b  (OC, OH*OW) = w (OC, C*K*K) . col_b + b
// Backward recomputes col_b rather than keeping the whole batch's (large)
// matrix. Weight gradients are summed per thread, then over threads in thread
// order: results depend on the thread count, never on timing.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "blas_cpu.h"
#include "kernels_cpu.h"

namespace rs {
namespace {

template <class T> void im2col(T* col, const T* in, const ConvShape& s) {
  const int KK = s.K * s.K, OHW = s.OH * s.OW;
  for (int r = 0; r < s.C * KK; ++r) {
    const int c = r / KK, kh = (r % KK) / s.K, kw = r % s.K;
    const T* plane = in + size_t(c) * s.H * s.W;
    T* dst = col + size_t(r) * OHW;
    for (int oh = 0; oh < s.OH; ++oh) {
      T* row = dst + size_t(oh) * s.OW;
      const int ih = oh * s.stride - s.pad + kh;
      if (ih < 0 || ih >= s.H) {
        std::fill(row, row + s.OW, T(0));
        continue;
      }
      const T* src = plane + size_t(ih) * s.W;
      if (s.stride == 1) {  // contiguous run with zero borders
        const int lo = std::clamp(s.pad - kw, 0, s.OW), hi = std::clamp(s.W + s.pad - kw, lo, s.OW);
        std::fill(row, row + lo, T(0));
        std::copy(src + lo - s.pad + kw, src + hi - s.pad + kw, row + lo);
        std::fill(row + hi, row + s.OW, T(0));
      } else {
        for (int ow = 0; ow < s.OW; ++ow) {
          const int iw = ow * s.stride - s.pad + kw;
          row[ow] = (iw >= 0 && iw < s.W) ? src[iw] : T(0);
        }
      }
    }
  }
}

template <class T> void col2im(T* din, const T* col, const ConvShape& s) {
  const int KK = s.K * s.K, OHW = s.OH * s.OW;
  std::fill_n(din, size_t(s.C) * s.H * s.W, T(0));
  for (int r = 0; r < s.C * KK; ++r) {
    const int c = r / KK, kh = (r % KK) / s.K, kw = r % s.K;
    T* plane = din + size_t(c) * s.H * s.W;
    const T* src = col + size_t(r) * OHW;
    for (int oh = 0; oh < s.OH; ++oh) {
      const int ih = oh * s.stride - s.pad + kh;
      if (ih < 0 || ih >= s.H) continue;
      const T* row = src + size_t(oh) * s.OW;
      T* dst = plane + size_t(ih) * s.W;
      if (s.stride == 1) {
        const int lo = std::clamp(s.pad - kw, 0, s.OW), hi = std::clamp(s.W + s.pad - kw, lo, s.OW);
        T* d = dst - s.pad + kw;
        for (int ow = lo; ow < hi; ++ow) d[ow] += row[ow];
      } else {
        for (int ow = 0; ow < s.OW; ++ow) {
          const int iw = ow * s.stride - s.pad + kw;
          if (iw >= 0 && iw < s.W) dst[iw] += row[ow];
        }
      }
    }
  }
}

// Per-thread scratch, kept across calls (OpenMP threads are persistent).
template <class T> std::vector<T>& scratch(int which) {
  thread_local std::vector<T> buf[2];
  return buf[which];
}

}  // namespace

template <class T> void conv2d_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s) {
  const int CKK = int(s.col_rows()), OHW = s.OH * s.OW;
  const size_t in_sz = size_t(s.C) * s.H * s.W, out_sz = size_t(s.OC) * OHW;
#pragma omp parallel
  {
    std::vector<T>& col = scratch<T>(0);
    col.resize(s.col_rows() * OHW);
#pragma omp for schedule(static)
    for (int n = 0; n < s.B; ++n) {
      T* o = out + n * out_sz;
      for (int oc = 0; oc < s.OC; ++oc) std::fill_n(o + size_t(oc) * OHW, OHW, b[oc]);
      im2col(col.data(), in + n * in_sz, s);
      gemm(CblasNoTrans, CblasNoTrans, s.OC, OHW, CKK, T(1), w, CKK, col.data(), OHW, T(1), o, OHW);
    }
  }
}

template <class T>
void conv2d_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, const ConvShape& s) {
  const int CKK = int(s.col_rows()), OHW = s.OH * s.OW;
  const size_t in_sz = size_t(s.C) * s.H * s.W, out_sz = size_t(s.OC) * OHW, nw = size_t(s.OC) * CKK;
  std::vector<T*> parts(size_t(omp_get_max_threads()), nullptr);
#pragma omp parallel
  {
    std::vector<T>& col = scratch<T>(0);
    std::vector<T>& acc = scratch<T>(1);  // (OC, CKK) weight grads, then (OC) bias grads
    col.resize(s.col_rows() * OHW);
    acc.assign(nw + s.OC, T(0));
    parts[size_t(omp_get_thread_num())] = acc.data();
#pragma omp for schedule(static)
    for (int n = 0; n < s.B; ++n) {
      const T* dy = dout + n * out_sz;
      im2col(col.data(), in + n * in_sz, s);
      gemm(CblasNoTrans, CblasTrans, s.OC, CKK, OHW, T(1), dy, OHW, col.data(), OHW, T(1), acc.data(), CKK);
      for (int oc = 0; oc < s.OC; ++oc) {
        T sum = 0;
        for (int p = 0; p < OHW; ++p) sum += dy[size_t(oc) * OHW + p];
        acc[nw + oc] += sum;
      }
      if (din) {
        gemm(CblasTrans, CblasNoTrans, CKK, OHW, s.OC, T(1), w, CKK, dy, OHW, T(0), col.data(), OHW);
        col2im(din + n * in_sz, col.data(), s);
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < nw + s.OC; ++i) {
    T sum = 0;
    for (T* p : parts)
      if (p) sum += p[i];
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
