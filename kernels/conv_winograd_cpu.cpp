// conv2d by Winograd's minimal filtering, stride 1, R x R filters, R = 3 or 5
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
// Forward, F(2x2, RxR): each 2x2 output tile is
//   A^T [ sum_c (G g_c G^T) (.) (B^T d_c B) ] A,
// d_c the tile's N x N input window in channel c (N = R + 1), (.) the
// element-wise product. Summed over channels these are N*N independent small
// matrix products per block of tiles, (tiles x C) . (C x OC): 36 multiply-adds
// per tile, channel and output channel instead of 100 for 5x5 (2.8x fewer), 16
// instead of 36 for 3x3. The input gradient is this forward on dout with the
// filters flipped (conv_cpu.cpp). The weight gradient, F(RxR, 2x2): a 2x2 tile
// of dout is the "filter" of the same window, and the products are summed over
// every tile before one output transform per filter.
// Interpolation points 0, +-1, +-2, oo (5x5) and 0, +-1, oo (3x3): small integer
// coefficients in the data transforms; in float the rounding is up to ~7e-6 of
// a tensor's largest value (the GEMM path's ~3e-7; test_gradcheck bounds it).
// Layout: each sample is copied channels-last (NHWC) with its zero border, and
// extended to whole tiles, so a tile's window is N x N vectors of channels and
// the transforms are vector adds; channel counts are padded with zeros to the
// vector width. A thread takes whole samples; per block of a sample's tiles (at
// most kBlock) it transforms, then runs the N*N products with the register-
// blocked kernel of simd_cpu.h (6 rows x up to 4 vectors per pass). Forward:
// tiles are independent, so the output never depends on the thread count; the
// weight gradient sums per thread, then over threads in thread order, as the
// other backward paths do.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels_cpu.h"
#include "simd_cpu.h"

namespace rs {
namespace {

using simd::kRows;
using simd::kV;
using simd::load;
using simd::round_up;
using simd::store;
using simd::Vec;

// F(2, R) for the forward and the input gradient: B^T (applied to N values
// x[k * st]), A^T (N -> 2) and G (N x R, for the filters, once per call).
// F(R, 2) for the weight gradient (the same points, so the same B^T): the
// 2 x 2 tile of dout is the "filter", gw its N x 2 transform, AW^T (R x N)
// maps the sums over tiles back to an R x R weight gradient.
template <int R> struct Wino;
template <> struct Wino<5> {
  static constexpr int N = 6;
  template <class V> static void bt(V* r, const V* x, size_t st) {
    const V d0 = x[0], d1 = x[st], d2 = x[2 * st], d3 = x[3 * st], d4 = x[4 * st], d5 = x[5 * st];
    r[0] = 4 * d0 - 5 * d2 + d4;
    r[1] = d3 + d4 - 4 * (d1 + d2);
    r[2] = d4 - d3 + 4 * (d1 - d2);
    r[3] = d4 - d2 + 2 * (d3 - d1);
    r[4] = d4 - d2 + 2 * (d1 - d3);
    r[5] = 4 * d1 - 5 * d3 + d5;
  }
  template <class V> static void at(V* y, const V* x, size_t st) {
    const V m1 = x[st], m2 = x[2 * st], m3 = x[3 * st], m4 = x[4 * st];
    y[0] = x[0] + (m1 + m2) + (m3 + m4);
    y[1] = (m1 - m2) + 2 * (m3 - m4) + x[5 * st];
  }
  static constexpr double G[6][5] = {{1. / 4, 0, 0, 0, 0},
                                     {-1. / 6, -1. / 6, -1. / 6, -1. / 6, -1. / 6},
                                     {-1. / 6, 1. / 6, -1. / 6, 1. / 6, -1. / 6},
                                     {1. / 24, 1. / 12, 1. / 6, 1. / 3, 2. / 3},
                                     {1. / 24, -1. / 12, 1. / 6, -1. / 3, 2. / 3},
                                     {0, 0, 0, 0, 1}};
  template <class V> static void gw(V* r, const V* x, size_t st) {
    const V g0 = x[0], g1 = x[st];
    r[0] = g0 / 4;
    r[1] = (g0 + g1) / -6;
    r[2] = (g1 - g0) / 6;
    r[3] = g0 / 24 + g1 / 12;
    r[4] = g0 / 24 - g1 / 12;
    r[5] = g1;
  }
  static constexpr double AWT[5][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 0}, {0, 1, 1, 16, 16, 1}};
};
template <> struct Wino<3> {
  static constexpr int N = 4;
  template <class V> static void bt(V* r, const V* x, size_t st) {
    const V d1 = x[st], d2 = x[2 * st];
    r[0] = d2 - x[0];
    r[1] = d1 + d2;
    r[2] = d2 - d1;
    r[3] = x[3 * st] - d1;
  }
  template <class V> static void at(V* y, const V* x, size_t st) {
    const V m1 = x[st], m2 = x[2 * st];
    y[0] = x[0] + m1 + m2;
    y[1] = m1 - m2 + x[3 * st];
  }
  static constexpr double G[4][3] = {{-1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
  template <class V> static void gw(V* r, const V* x, size_t st) {
    const V g0 = x[0], g1 = x[st];
    r[0] = -g0;
    r[1] = (g0 + g1) / 2;
    r[2] = (g0 - g1) / 2;
    r[3] = g1;
  }
  static constexpr double AWT[3][4] = {{1, 1, 1, 0}, {0, 1, -1, 0}, {0, 1, 1, 1}};
};

constexpr int kBlock = 96;  // tiles per block, at most (a multiple of kRows)
// The tiling of one layer: T = (TY, TX) tiles of 2 x 2 outputs per sample,
// Q = a sample's input channels-last (Hq, Wq, Cp) with its zero border, whole
// tiles; blocks of at most blk tiles.
template <class T, int R> struct Tiling {
  static constexpr int N = R + 1, NN = N * N;
  int Cp, OCp, TY, TX, tiles, Hq, Wq, blk;
  explicit Tiling(const ConvShape& s)
      : Cp(int(round_up(s.C, kV<T>))),
        OCp(int(round_up(s.OC, kV<T>))),
        TY((s.OH + 1) / 2),
        TX((s.OW + 1) / 2),
        tiles(TY * TX),
        Hq(2 * TY + R - 1),
        Wq(2 * TX + R - 1),
        blk(int(round_up(std::min(tiles, kBlock), kRows))) {}

  // Q = sample x (C, H, W) channels-last with a zero border of pad
  void pad(T* Q, const T* x, const ConvShape& s) const {
    simd::to_channels_last(Q, x, s.C, s.H, s.W, s.pad, Hq, Wq, Cp);
  }

  // Vb[xi][t][c] (tile stride ld) = B^T d B of tiles [t0, t0 + nt), over vectors of channels
  void input_transform(T* Vb, size_t ld, const T* Q, int t0, int nt) const {
    using V = Vec<T>;
    for (int t = 0; t < nt; ++t) {
      const T* d0 = Q + (size_t(2 * ((t0 + t) / TX)) * Wq + 2 * ((t0 + t) % TX)) * Cp;
      for (int c = 0; c < Cp; c += kV<T>) {
        V d[N][N], e[N][N], r[N];
        for (int i = 0; i < N; ++i)
          for (int j = 0; j < N; ++j) d[i][j] = load(d0 + (size_t(i) * Wq + j) * Cp + c);
        for (int j = 0; j < N; ++j) {  // e = B^T d, column by column
          Wino<R>::bt(r, &d[0][j], N);
          for (int i = 0; i < N; ++i) e[i][j] = r[i];
        }
        for (int i = 0; i < N; ++i) {  // B^T d B, row by row
          Wino<R>::bt(r, &e[i][0], 1);
          for (int j = 0; j < N; ++j) store(Vb + (size_t(i * N + j) * blk + t) * ld + c, r[j]);
        }
      }
    }
  }
};

template <class T, int R> void forward(T* out, const T* in, const T* w, const T* b, const ConvShape& s) {
  using V = Vec<T>;
  using W = Wino<R>;
  constexpr int N = W::N, NN = N * N, kv = kV<T>;
  const Tiling<T, R> L(s);
  const int Cp = L.Cp, OCp = L.OCp, TX = L.TX, blk = L.blk;
  const size_t in_sz = size_t(s.C) * s.H * s.W, OHW = size_t(s.OH) * s.OW;

  // U[xi][c][oc] = (G g G^T)[xi] of filter (oc, c); zero where c or oc is padding
  std::vector<T> U(size_t(NN) * Cp * OCp, T(0));
#pragma omp parallel for schedule(static)
  for (int oc = 0; oc < s.OC; ++oc)
    for (int c = 0; c < s.C; ++c) {
      const T* g = w + (size_t(oc) * s.C + c) * R * R;
      double gt[N][R];  // G g
      for (int i = 0; i < N; ++i)
        for (int l = 0; l < R; ++l) {
          double sum = 0;
          for (int k = 0; k < R; ++k) sum += W::G[i][k] * g[k * R + l];
          gt[i][l] = sum;
        }
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
          double sum = 0;
          for (int l = 0; l < R; ++l) sum += gt[i][l] * W::G[j][l];
          U[(size_t(i * N + j) * Cp + c) * OCp + oc] = T(sum);
        }
    }

#pragma omp parallel
  {
    thread_local std::vector<T> Q, Vb, Mb, Y;
    Q.resize(size_t(L.Hq) * L.Wq * Cp);
    Vb.assign(size_t(NN) * blk * Cp, T(0));  // (xi, tile, c); rows past a block's tiles: finite, unused
    Mb.resize(size_t(NN) * blk * OCp);       // (xi, tile, oc)
    Y.resize(size_t(4) * L.tiles * OCp);     // (2 TY, 2 TX, OCp): whole tiles, channels-last
#pragma omp for schedule(static)
    for (int n = 0; n < s.B; ++n) {
      L.pad(Q.data(), in + n * in_sz, s);
      for (int t0 = 0; t0 < L.tiles; t0 += blk) {
        const int nt = std::min(blk, L.tiles - t0);
        L.input_transform(Vb.data(), Cp, Q.data(), t0, nt);
        for (int xi = 0; xi < NN; ++xi)  // Mb[xi] = Vb[xi] . U[xi]
          for (int t = 0; t < nt; t += kRows)
            simd::product_row<T, kRows, simd::Store::set>(Mb.data() + (size_t(xi) * blk + t) * OCp, OCp,
                                               Vb.data() + (size_t(xi) * blk + t) * Cp, Cp, 1,
                                               U.data() + size_t(xi) * Cp * OCp, OCp, Cp, OCp);
        // output transform: Y tile = A^T m A
        for (int t = 0; t < nt; ++t) {
          T* yt = Y.data() + (size_t(2 * ((t0 + t) / TX)) * 2 * TX + 2 * ((t0 + t) % TX)) * OCp;
          for (int oc0 = 0; oc0 < OCp; oc0 += kv) {
            V mv[N][N], e[2][N], r[2];
            for (int i = 0; i < N; ++i)
              for (int j = 0; j < N; ++j) mv[i][j] = load(Mb.data() + (size_t(i * N + j) * blk + t) * OCp + oc0);
            for (int j = 0; j < N; ++j) {  // e = A^T m
              W::at(r, &mv[0][j], N);
              e[0][j] = r[0], e[1][j] = r[1];
            }
            for (int i = 0; i < 2; ++i) {
              W::at(r, &e[i][0], 1);  // A^T m A, row i
              store(yt + size_t(i) * 2 * TX * OCp + oc0, r[0]);
              store(yt + (size_t(i) * 2 * TX + 1) * OCp + oc0, r[1]);
            }
          }
        }
      }
      // out (OC, OH, OW) = Y + bias, the valid part
      T* y = out + size_t(n) * s.OC * OHW;
      for (int oc = 0; oc < s.OC; ++oc)
        for (int h = 0; h < s.OH; ++h) {
          const T* src = Y.data() + size_t(h) * 2 * TX * OCp + oc;
          T* dst = y + size_t(oc) * OHW + size_t(h) * s.OW;
          for (int x0 = 0; x0 < s.OW; ++x0) dst[x0] = src[size_t(x0) * OCp] + b[oc];
        }
    }
  }
}

// Weight (and bias) gradients by F(R, 2): per tile, the N x N transforms of the
// input window (B^T d B, as forward) and of the 2 x 2 tile of dout (gw g gw^T);
// their products summed over every tile of the thread's samples, per (xi, c, oc):
// M[xi] += Vb[xi]^T . Gb[xi], the same product kernel with rows = channels
// (Vb's tile stride Cs: the channels padded to whole kRows rows, zeros). Then
// per thread in thread order, and dw = AW^T M AW per filter.
template <class T, int R> void weight_grad(T* dw, T* db, const T* dout, const T* in, const ConvShape& s) {
  using V = Vec<T>;
  using W = Wino<R>;
  constexpr int N = W::N, NN = N * N, kv = kV<T>;
  const Tiling<T, R> L(s);
  const int OCp = L.OCp, TX = L.TX, blk = L.blk, Cs = int(round_up(L.Cp, kRows));
  const size_t in_sz = size_t(s.C) * s.H * s.W, OHW = size_t(s.OH) * s.OW, nm = size_t(NN) * Cs * OCp;
  std::vector<T*> parts(size_t(omp_get_max_threads()), nullptr);
#pragma omp parallel
  {
    thread_local std::vector<T> Q, D, Vb, Gb, M;
    Q.resize(size_t(L.Hq) * L.Wq * L.Cp);
    D.assign(size_t(4) * L.tiles * OCp, T(0));  // dout (2 TY, 2 TX, OCp), zero past OH, OW
    Vb.assign(size_t(NN) * blk * Cs, T(0));     // (xi, tile, Cs)
    Gb.resize(size_t(NN) * blk * OCp);          // (xi, tile, oc)
    M.assign(nm + s.OC, T(0));                  // (xi, Cs, OCp), then the bias sums
    parts[size_t(omp_get_thread_num())] = M.data();
#pragma omp for schedule(static)
    for (int n = 0; n < s.B; ++n) {
      L.pad(Q.data(), in + n * in_sz, s);
      const T* dy = dout + size_t(n) * s.OC * OHW;
      for (int oc = 0; oc < s.OC; ++oc) {
        const T* g = dy + size_t(oc) * OHW;
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (size_t q = 0; q < OHW; ++q) sum += g[q];
        M[nm + oc] += sum;
        for (int h = 0; h < s.OH; ++h)
          for (int x0 = 0; x0 < s.OW; ++x0) D[(size_t(h) * 2 * TX + x0) * OCp + oc] = g[size_t(h) * s.OW + x0];
      }
      for (int t0 = 0; t0 < L.tiles; t0 += blk) {
        const int nt = std::min(blk, L.tiles - t0);
        L.input_transform(Vb.data(), Cs, Q.data(), t0, nt);
        for (int t = 0; t < nt; ++t) {  // Gb[xi][t] = gw g gw^T over vectors of output channels
          const T* g0 = D.data() + (size_t(2 * ((t0 + t) / TX)) * 2 * TX + 2 * ((t0 + t) % TX)) * OCp;
          for (int oc0 = 0; oc0 < OCp; oc0 += kv) {
            V g[2][2], e[N][2], r[N];
            for (int i = 0; i < 2; ++i)
              for (int j = 0; j < 2; ++j) g[i][j] = load(g0 + (size_t(i) * 2 * TX + j) * OCp + oc0);
            for (int j = 0; j < 2; ++j) {
              W::gw(r, &g[0][j], 2);
              for (int i = 0; i < N; ++i) e[i][j] = r[i];
            }
            for (int i = 0; i < N; ++i) {
              W::gw(r, &e[i][0], 1);
              for (int j = 0; j < N; ++j) store(Gb.data() + (size_t(i * N + j) * blk + t) * OCp + oc0, r[j]);
            }
          }
        }
        for (int xi = 0; xi < NN; ++xi)  // M[xi] (Cs, OCp) += Vb[xi]^T . Gb[xi]
          for (int c = 0; c < Cs; c += kRows)
            simd::product_row<T, kRows, simd::Store::add>(M.data() + (size_t(xi) * Cs + c) * OCp, OCp,
                                              Vb.data() + size_t(xi) * blk * Cs + c, 1, Cs,
                                              Gb.data() + size_t(xi) * blk * OCp, OCp, nt, OCp);
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (int oc = 0; oc < s.OC; ++oc) {
    for (int c = 0; c < s.C; ++c) {
      double m[N][N], e[R][N];
      for (int xi = 0; xi < NN; ++xi) {
        T sum = 0;
        for (T* q : parts)
          if (q) sum += q[(size_t(xi) * Cs + c) * OCp + oc];
        m[xi / N][xi % N] = sum;
      }
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < N; ++j) {
          double sum = 0;
          for (int k = 0; k < N; ++k) sum += W::AWT[i][k] * m[k][j];
          e[i][j] = sum;
        }
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < R; ++j) {
          double sum = 0;
          for (int k = 0; k < N; ++k) sum += e[i][k] * W::AWT[j][k];
          dw[((size_t(oc) * s.C + c) * R + i) * R + j] = T(sum);
        }
    }
    T sum = 0;
    for (T* q : parts)
      if (q) sum += q[nm + oc];
    db[oc] = sum;
  }
}

}  // namespace

bool winograd_applies(const ConvShape& s) { return s.stride == 1 && (s.K == 3 || s.K == 5); }

template <class T> void conv2d_winograd_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s) {
  if (s.K == 5)
    forward<T, 5>(out, in, w, b, s);
  else
    forward<T, 3>(out, in, w, b, s);
}

template <class T> void conv2d_winograd_weight_grad_cpu(T* dw, T* db, const T* dout, const T* in, const ConvShape& s) {
  if (s.K == 5)
    weight_grad<T, 5>(dw, db, dout, in, s);
  else
    weight_grad<T, 3>(dw, db, dout, in, s);
}

template void conv2d_winograd_forward_cpu<float>(float*, const float*, const float*, const float*, const ConvShape&);
template void conv2d_winograd_forward_cpu<double>(double*, const double*, const double*, const double*,
                                                  const ConvShape&);
template void conv2d_winograd_weight_grad_cpu<float>(float*, float*, const float*, const float*, const ConvShape&);
template void conv2d_winograd_weight_grad_cpu<double>(double*, double*, const double*, const double*, const ConvShape&);

}  // namespace rs
