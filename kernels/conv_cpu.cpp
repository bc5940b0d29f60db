// conv2d, CPU: im2col over the whole batch and one GEMM per pass.
//   col  (C*K*K, B*OH*OW)   row r = (c, kh, kw), column j = (b, oh, ow)
//   tmp  (OC, B*OH*OW)      GEMM output / gradient staging
// im2col is parallel over rows of col and col2im over input channels, so no
// two threads write the same element and results are independent of timing.
#include <algorithm>

#include "blas_cpu.h"
#include "kernels_cpu.h"

namespace rs {
namespace {

template <class T> void im2col(T* col, const T* in, const ConvShape& s) {
  const int KK = s.K * s.K, OHW = s.OH * s.OW;
  const long rows = long(s.C) * KK;
#pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; ++r) {
    const int c = int(r / KK), kh = int(r % KK) / s.K, kw = int(r % s.K);
    T* dst = col + size_t(r) * s.col_cols();
    for (int b = 0; b < s.B; ++b) {
      const T* plane = in + (size_t(b) * s.C + c) * s.H * s.W;
      for (int oh = 0; oh < s.OH; ++oh) {
        T* row = dst + size_t(b) * OHW + size_t(oh) * s.OW;
        const int ih = oh * s.stride - s.pad + kh;
        if (ih < 0 || ih >= s.H) {
          std::fill(row, row + s.OW, T(0));
          continue;
        }
        const T* src = plane + size_t(ih) * s.W;
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
#pragma omp parallel for schedule(static)
  for (int c = 0; c < s.C; ++c) {
    for (int b = 0; b < s.B; ++b) std::fill_n(din + (size_t(b) * s.C + c) * s.H * s.W, size_t(s.H) * s.W, T(0));
    for (int k = 0; k < KK; ++k) {
      const int kh = k / s.K, kw = k % s.K;
      const T* src = col + (size_t(c) * KK + k) * s.col_cols();
      for (int b = 0; b < s.B; ++b) {
        T* plane = din + (size_t(b) * s.C + c) * s.H * s.W;
        for (int oh = 0; oh < s.OH; ++oh) {
          const int ih = oh * s.stride - s.pad + kh;
          if (ih < 0 || ih >= s.H) continue;
          const T* row = src + size_t(b) * OHW + size_t(oh) * s.OW;
          T* dst = plane + size_t(ih) * s.W;
          for (int ow = 0; ow < s.OW; ++ow) {
            const int iw = ow * s.stride - s.pad + kw;
            if (iw >= 0 && iw < s.W) dst[iw] += row[ow];
          }
        }
      }
    }
  }
}

}  // namespace

template <class T> void conv2d_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s, T* ws) {
  const int CKK = int(s.col_rows()), J = int(s.col_cols()), OHW = s.OH * s.OW;
  T* col = ws;
  T* tmp = ws + s.col_rows() * s.col_cols();
  im2col(col, in, s);
  gemm(CblasNoTrans, CblasNoTrans, s.OC, J, CKK, T(1), w, CKK, col, J, T(0), tmp, J);
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < s.B; ++n)
    for (int oc = 0; oc < s.OC; ++oc) {
      const T* src = tmp + size_t(oc) * J + size_t(n) * OHW;
      T* dst = out + (size_t(n) * s.OC + oc) * OHW;
      for (int p = 0; p < OHW; ++p) dst[p] = src[p] + b[oc];
    }
}

template <class T>
void conv2d_backward_cpu(T* din, T* dw, T* db, const T* dout, const T* w, const ConvShape& s, T* ws) {
  const int CKK = int(s.col_rows()), J = int(s.col_cols()), OHW = s.OH * s.OW;
  T* col = ws;
  T* tmp = ws + s.col_rows() * s.col_cols();
#pragma omp parallel for schedule(static)
  for (int oc = 0; oc < s.OC; ++oc) {
    T sum = 0;
    for (int n = 0; n < s.B; ++n) {
      const T* src = dout + (size_t(n) * s.OC + oc) * OHW;
      T* dst = tmp + size_t(oc) * J + size_t(n) * OHW;
      for (int p = 0; p < OHW; ++p) {
        dst[p] = src[p];
        sum += src[p];
      }
    }
    db[oc] = sum;
  }
  gemm(CblasNoTrans, CblasTrans, s.OC, CKK, J, T(1), tmp, J, col, J, T(0), dw, CKK);  // dw (OC, CKK)
  if (!din) return;
  gemm(CblasTrans, CblasNoTrans, CKK, J, s.OC, T(1), w, CKK, tmp, J, T(0), col, J);  // dcol (CKK, J)
  col2im(din, col, s);
}

template void conv2d_forward_cpu<float>(float*, const float*, const float*, const float*, const ConvShape&, float*);
template void conv2d_forward_cpu<double>(double*, const double*, const double*, const double*, const ConvShape&,
                                         double*);
template void conv2d_backward_cpu<float>(float*, float*, float*, const float*, const float*, const ConvShape&,
                                         float*);
template void conv2d_backward_cpu<double>(double*, double*, double*, const double*, const double*, const ConvShape&,
                                          double*);

}  // namespace rs
