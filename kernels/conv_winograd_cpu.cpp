// conv2d by Winograd's minimal filtering, stride 1, R x R filters, R = 3 or 5
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
// Forward, F(MxM, RxR): each M x M output tile is
//   A^T [ sum_c (G g_c G^T) (.) (B^T d_c B) ] A,
// d_c the tile's N x N input window in channel c (N = M + R - 1), (.) the
// element-wise product. Summed over channels these are N*N independent small
// matrix products per block of tiles, (tiles x C) . (C x OC). 5x5: F(4x4, 5x5),
// 64 multiply-adds per 16 outputs, channel and output channel instead of 400
// (6.25x fewer; F(2x2, 5x5) would take 36 per 4, 2.78x fewer). 3x3:
// F(2x2, 3x3), 16 per 4 instead of 36. The input gradient is
// this forward on dout with the filters flipped (conv_cpu.cpp). The weight
// gradient, F(RxR, MxM): an M x M tile of dout is the "filter" of the same
// window, and the products are summed over every tile before one output
// transform per filter.
// Interpolation points 0, +-1, +-1/2, +-2, oo (5x5) and 0, +-1, oo (3x3):
// in float the rounding is up to ~8e-6 of a tensor's largest value (the GEMM
// path's ~3e-7; tests/kernels/test_conv.cpp bounds it at 2e-5).
// Layout: each sample is copied channels-last (NHWC) with its zero border, and
// extended to whole tiles, so a tile's window is N x N vectors of channels and
// the transforms are vector adds; channel counts are padded with zeros to the
// vector width. A thread takes a contiguous run of samples, in chunks of up
// to a block of tiles sized for L2 (several small samples: tf-mnist-cnn's conv2 has 16 tiles
// of 4x4); per block it transforms, then runs the N*N products with the
// register-blocked kernel of simd_cpu.h (6 rows x up to 4 vectors per pass).
// Forward: tiles are independent, so the output never depends on the thread
// count; the weight gradient sums per thread, then over threads in thread
// order, as the other backward paths do.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
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

// F(M, R) for the forward and the input gradient: bt applies B^T to N = M + R - 1
// values x[k * st], at applies A^T (N -> M), G (N x R) transforms the filters
// (once per call). F(R, M) for the weight gradient (the same N points, so the
// same B^T): the M x M tile of dout is the "filter", gw its N x M transform,
// AWT (R x N) maps the sums over tiles back to an R x R weight gradient.
// The matrices follow Lavin's construction from the points (A^T[i][k] = p_k^i,
// G's rows scaled by 1 / prod_{l != k} (p_k - p_l), B^T's rows the products
// prod_{l != k} (x - p_l)), with the constants folded into adds and shared
// sums.
template <int M, int R> struct Wino;
template <class V> using Scalar = std::decay_t<decltype(std::declval<V>()[0])>;

// Points 0, 1, -1, 1/2, -1/2, 2, -2, oo (B^T as in F(6, 3) of the same points).
template <> struct Wino<4, 5> {
  static constexpr int N = 8;
  template <class V> static void bt(V* r, const V* x, size_t st) {
    using S = Scalar<V>;
    const V d0 = x[0], d1 = x[st], d2 = x[2 * st], d3 = x[3 * st], d4 = x[4 * st], d5 = x[5 * st], d6 = x[6 * st],
            d7 = x[7 * st];
    r[0] = (d6 - d0) + S(5.25) * (d2 - d4);
    V a = d2 + d6 - S(4.25) * d4, b = d1 + d5 - S(4.25) * d3;
    r[1] = a + b, r[2] = a - b;
    a = 4 * d2 - 5 * d4 + d6, b = 2 * d1 - S(2.5) * d3 + S(0.5) * d5;
    r[3] = a + b, r[4] = a - b;
    a = S(0.25) * d2 - S(1.25) * d4 + d6, b = S(0.5) * d1 - S(2.5) * d3 + 2 * d5;
    r[5] = a + b, r[6] = a - b;
    r[7] = (d7 - d1) + S(5.25) * (d3 - d5);
  }
  template <class V> static void at(V* y, const V* x, size_t st) {
    using S = Scalar<V>;
    const V s1 = x[st] + x[2 * st], t1 = x[st] - x[2 * st], s2 = x[3 * st] + x[4 * st], t2 = x[3 * st] - x[4 * st],
            s3 = x[5 * st] + x[6 * st], t3 = x[5 * st] - x[6 * st];
    y[0] = x[0] + s1 + s2 + s3;
    y[1] = t1 + S(0.5) * t2 + 2 * t3;
    y[2] = s1 + S(0.25) * s2 + 4 * s3;
    y[3] = t1 + S(0.125) * t2 + 8 * t3 + x[7 * st];
  }
  static constexpr double G[8][5] = {{-1, 0, 0, 0, 0},
                                     {-2. / 9, -2. / 9, -2. / 9, -2. / 9, -2. / 9},
                                     {-2. / 9, 2. / 9, -2. / 9, 2. / 9, -2. / 9},
                                     {32. / 45, 16. / 45, 8. / 45, 4. / 45, 2. / 45},
                                     {32. / 45, -16. / 45, 8. / 45, -4. / 45, 2. / 45},
                                     {1. / 90, 1. / 45, 2. / 45, 4. / 45, 8. / 45},
                                     {1. / 90, -1. / 45, 2. / 45, -4. / 45, 8. / 45},
                                     {0, 0, 0, 0, 1}};
  template <class V> static void gw(V* r, const V* x, size_t st) {  // G of F(5, 4)
    using S = Scalar<V>;
    const V g0 = x[0], g1 = x[st], g2 = x[2 * st], g3 = x[3 * st];
    r[0] = -g0;
    V e = S(-2. / 9) * (g0 + g2), o = S(-2. / 9) * (g1 + g3);
    r[1] = e + o, r[2] = e - o;
    e = S(32. / 45) * g0 + S(8. / 45) * g2, o = S(16. / 45) * g1 + S(4. / 45) * g3;
    r[3] = e + o, r[4] = e - o;
    e = S(1. / 90) * g0 + S(2. / 45) * g2, o = S(1. / 45) * g1 + S(4. / 45) * g3;
    r[5] = e + o, r[6] = e - o;
    r[7] = g3;
  }
  static constexpr double AWT[5][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                       {0, 1, -1, 1. / 2, -1. / 2, 2, -2, 0},
                                       {0, 1, 1, 1. / 4, 1. / 4, 4, 4, 0},
                                       {0, 1, -1, 1. / 8, -1. / 8, 8, -8, 0},
                                       {0, 1, 1, 1. / 16, 1. / 16, 16, 16, 1}};
};

template <> struct Wino<2, 3> {  // points 0, 1, -1, oo
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

// This thread's share of samples [0, B) in chunks of at most S: one contiguous
// run per thread (the same split at the same thread count), in near-equal chunks.
template <class F> void for_my_chunks(int B, int S, F&& f) {
  const int nt = omp_get_num_threads(), id = omp_get_thread_num();
  const int lo = int(int64_t(B) * id / nt), n = int(int64_t(B) * (id + 1) / nt) - lo, chunks = (n + S - 1) / S;
  for (int k = 0; k < chunks; ++k) f(lo + n * k / chunks, lo + n * (k + 1) / chunks);
}

constexpr int kMaxBlock = 96;  // tiles per block, at most (a multiple of kRows)

// Tiles per block, from the core's L2 (cpu_caches()): a block's transformed
// inputs and products (per_tile bytes each, with its share of the samples'
// channels-last copies) are written by the transforms and read back by the
// products, so the block, with the layer's transformed filters or weight-gradient
// sums (fixed bytes, read by every block), should fit 3/4 of L2. Where the
// fixed part alone leaves too little (a 512 KB L2 and conv2's 512 KB of
// filters), it is read from L3 for every block whatever the block size, and
// the block fills half of L2 (a block past L2 is much slower:
// docs/performance.md, "Why the thresholds").
// The weight gradient sums a block's tiles before adding them to the running
// sums, so its rounding depends on the block, i.e. on the L2 size: a run
// resumed on a machine with another L2 differs by rounding, as it would with
// another thread count.
int block_tiles(size_t per_tile, size_t fixed) {
  const size_t l2 = cpu_caches().l2, room = l2 * 3 / 4 > fixed + 2 * kRows * per_tile ? l2 * 3 / 4 - fixed : l2 / 2;
  return std::clamp(int(room / per_tile), kRows, kMaxBlock);
}
// The tiling of one layer: T = (TY, TX) tiles of M x M outputs per sample,
// Q = a sample's input channels-last (Hq, Wq, Cp) with its zero border, whole
// tiles. A chunk of S samples is transformed and multiplied together, in
// blocks of at most blk of its tiles (g = slot * tiles + tile).
template <class T, int M, int R> struct Tiling {
  static constexpr int N = M + R - 1, NN = N * N;
  int Cp, OCp, TY, TX, tiles, Hq, Wq;
  size_t qsz, ysz;  // per sample: Q, and an output-sized (M TY, M TX, OCp) tile grid
  int S, blk;       // samples per chunk, tiles per block
  explicit Tiling(const ConvShape& s)
      : Cp(int(round_up(s.C, kV<T>))),
        OCp(int(round_up(s.OC, kV<T>))),
        TY((s.OH + M - 1) / M),
        TX((s.OW + M - 1) / M),
        tiles(TY * TX),
        Hq(M * TY + R - 1),
        Wq(M * TX + R - 1),
        qsz(size_t(Hq) * Wq * Cp),
        ysz(size_t(M * M) * tiles * OCp),
        S(std::max(1, max_tiles() / tiles)),
        blk(int(round_up(std::min(S * tiles, max_tiles()), kRows))) {}

  int max_tiles() const {
    const size_t per_tile = sizeof(T) * (NN * size_t(Cp + OCp) + (qsz + ysz) / size_t(tiles));
    return block_tiles(per_tile, sizeof(T) * NN * size_t(Cp) * OCp);
  }

  // The stride of a block buffer's N * N planes (xi) at tile stride ld: one vector
  // past whole rows, so the planes a tile's transform touches fall in different
  // cache sets (at a multiple of 4 KB they shared one, and evicted each other).
  size_t plane(size_t ld) const { return size_t(blk) * ld + kV<T>; }

  // Q = sample x (C, H, W) channels-last with a zero border of pad
  void pad(T* Q, const T* x, const ConvShape& s) const {
    simd::to_channels_last(Q, x, s.C, s.H, s.W, s.pad, Hq, Wq, Cp);
  }
  // Tile g's first value in per-slot grids of `slot` values, rows of `cols`
  // pixels of cs channels: its input window in Q (Wq, Cp, qsz), its outputs
  // in an (M TY, M TX, cs) grid (out_at).
  size_t tile_at(int g, size_t slot, int cols, int cs) const {
    const int t = g % tiles;
    return (g / tiles) * slot + (size_t(M * (t / TX)) * cols + M * (t % TX)) * cs;
  }
  size_t out_at(int g, int cs) const { return tile_at(g, size_t(M * M) * tiles * cs, M * TX, cs); }

  // Vb[xi][t][c] (tile stride ld) = B^T d B of tiles [g0, g0 + nt), over vectors of channels
  void input_transform(T* Vb, size_t ld, const T* Q, int g0, int nt) const {
    using V = Vec<T>;
    for (int t = 0; t < nt; ++t) {
      const T* d0 = Q + tile_at(g0 + t, qsz, Wq, Cp);
      for (int c = 0; c < Cp; c += kV<T>) {
        V d[N], e[N][N], r[N];
        for (int j = 0; j < N; ++j) {  // e = B^T d, column by column
          for (int i = 0; i < N; ++i) d[i] = load(d0 + (size_t(i) * Wq + j) * Cp + c);
          Wino<M, R>::bt(r, d, 1);
          for (int i = 0; i < N; ++i) e[i][j] = r[i];
        }
        for (int i = 0; i < N; ++i) {  // B^T d B, row by row
          Wino<M, R>::bt(r, &e[i][0], 1);
          for (int j = 0; j < N; ++j) store(Vb + size_t(i * N + j) * plane(ld) + size_t(t) * ld + c, r[j]);
        }
      }
    }
  }
};

template <class T, int M, int R> void forward(T* out, const T* in, const T* w, const T* b, const ConvShape& s) {
  using V = Vec<T>;
  using W = Wino<M, R>;
  constexpr int N = W::N, NN = N * N, kv = kV<T>;
  const Tiling<T, M, R> L(s);
  const int Cp = L.Cp, OCp = L.OCp, blk = L.blk;
  const size_t in_sz = size_t(s.C) * s.H * s.W, OHW = size_t(s.OH) * s.OW;

  // U[xi][c][oc] = (G g G^T)[xi] of filter (oc, c), over vectors of output
  // channels; zero where c or oc is padding
  simd::Buffer<T> U(size_t(NN) * Cp * OCp, T(0));
#pragma omp parallel for schedule(static)
  for (int c = 0; c < s.C; ++c)
    for (int oc0 = 0; oc0 < s.OC; oc0 += kv) {
      alignas(64) T g[R][R][kv] = {};  // the filters' values, a vector per tap
      for (int l = 0; l < std::min(kv, s.OC - oc0); ++l)
        for (int k = 0; k < R * R; ++k) g[k / R][k % R][l] = w[(size_t(oc0 + l) * s.C + c) * R * R + k];
      V gt[N][R];
      for (int i = 0; i < N; ++i)  // G g
        for (int l = 0; l < R; ++l) {
          V sum{};
          for (int k = 0; k < R; ++k) sum += T(W::G[i][k]) * load(g[k][l]);
          gt[i][l] = sum;
        }
      for (int i = 0; i < N; ++i)  // (G g) G^T
        for (int j = 0; j < N; ++j) {
          V sum{};
          for (int l = 0; l < R; ++l) sum += T(W::G[j][l]) * gt[i][l];
          store(U.data() + (size_t(i * N + j) * Cp + c) * OCp + oc0, sum);
        }
    }

#pragma omp parallel
  {
    thread_local simd::Buffer<T> Q, Vb, Mb, Y;
    Q.resize(L.S * L.qsz);
    Vb.resize(NN * L.plane(Cp));   // (xi, tile, c); rows past a block's tiles: stale, their products unused
    Mb.resize(NN * L.plane(OCp));  // (xi, tile, oc)
    Y.resize(L.S * L.ysz);         // per slot (M TY, M TX, OCp): whole tiles, channels-last
    for_my_chunks(s.B, L.S, [&](int n0, int n1) {
      for (int n = n0; n < n1; ++n) L.pad(Q.data() + (n - n0) * L.qsz, in + n * in_sz, s);
      const int total = (n1 - n0) * L.tiles;
      for (int g0 = 0; g0 < total; g0 += blk) {
        const int nt = std::min(blk, total - g0);
        L.input_transform(Vb.data(), Cp, Q.data(), g0, nt);
        for (int xi = 0; xi < NN; ++xi)  // Mb[xi] = Vb[xi] . U[xi]
          for (int t = 0; t < nt; t += kRows)
            simd::product_row<T, kRows, simd::Store::set>(Mb.data() + xi * L.plane(OCp) + size_t(t) * OCp, OCp,
                                                          Vb.data() + xi * L.plane(Cp) + size_t(t) * Cp, Cp, 1,
                                                          U.data() + size_t(xi) * Cp * OCp, OCp, Cp, OCp);
        // output transform: Y tile = A^T m A
        for (int t = 0; t < nt; ++t) {
          T* yt = Y.data() + L.out_at(g0 + t, OCp);
          for (int oc0 = 0; oc0 < OCp; oc0 += kv) {
            V m[N], e[M][N], r[N];
            for (int j = 0; j < N; ++j) {  // e = A^T m, column by column
              for (int i = 0; i < N; ++i) m[i] = load(Mb.data() + (i * N + j) * L.plane(OCp) + size_t(t) * OCp + oc0);
              W::at(r, m, 1);
              for (int i = 0; i < M; ++i) e[i][j] = r[i];
            }
            for (int i = 0; i < M; ++i) {
              W::at(r, &e[i][0], 1);  // A^T m A, row i
              for (int j = 0; j < M; ++j) store(yt + (size_t(i) * M * L.TX + j) * OCp + oc0, r[j]);
            }
          }
        }
      }
      for (int n = n0; n < n1; ++n)  // out (OC, OH, OW) = Y + bias, the valid part
        simd::from_channels_last(out + size_t(n) * s.OC * OHW, Y.data() + (n - n0) * L.ysz, b, s.OC, s.OH, s.OW,
                                 M * L.TX, OCp);
    });
  }
}

// Weight (and bias) gradients by F(R, M): per tile, the N x N transforms of the
// input window (B^T d B, as forward) and of the M x M tile of dout (gw g gw^T);
// their products summed over every tile of the thread's samples, per (xi, c, oc):
// M[xi] += Vb[xi]^T . Gb[xi], the same product kernel with rows = channels
// (Vb's tile stride Cs = Cp, the channels padded to whole vectors). Then
// per thread in thread order, and dw = AW^T M AW per filter.
template <class T, int M, int R> void weight_grad(T* dw, T* db, const T* dout, const T* in, const ConvShape& s) {
  using V = Vec<T>;
  using W = Wino<M, R>;
  constexpr int N = W::N, NN = N * N, kv = kV<T>;
  const Tiling<T, M, R> L(s);
  const int OCp = L.OCp, blk = L.blk, Cs = L.Cp, DW = M * L.TX;
  const size_t in_sz = size_t(s.C) * s.H * s.W, OHW = size_t(s.OH) * s.OW, nm = size_t(NN) * Cs * OCp;
  simd::ThreadSums<T> parts;
#pragma omp parallel
  {
    thread_local simd::Buffer<T> Q, D, Vb, Gb, Ms;
    Q.resize(L.S * L.qsz);
    D.resize(L.S * L.ysz);         // per slot dout (M TY, M TX, OCp), zero past OH, OW
    Vb.resize(NN * L.plane(Cs));   // (xi, tile, Cs)
    Gb.resize(NN * L.plane(OCp));  // (xi, tile, oc)
    Ms.assign(nm + s.OC, T(0));    // (xi, Cs, OCp), then the bias sums
    parts.mine(Ms.data());
    for_my_chunks(s.B, L.S, [&](int n0, int n1) {
      for (int n = n0; n < n1; ++n) {
        L.pad(Q.data() + (n - n0) * L.qsz, in + n * in_sz, s);
        const T* dy = dout + size_t(n) * s.OC * OHW;
        T* Dn = D.data() + (n - n0) * L.ysz;
        simd::to_channels_last(Dn, dy, s.OC, s.OH, s.OW, 0, M * L.TY, DW, OCp);
        for (int oc = 0; oc < s.OC; ++oc) {
          const T* g = dy + size_t(oc) * OHW;
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (size_t q = 0; q < OHW; ++q) sum += g[q];
          Ms[nm + oc] += sum;
        }
      }
      const int total = (n1 - n0) * L.tiles;
      for (int g0 = 0; g0 < total; g0 += blk) {
        const int nt = std::min(blk, total - g0);
        L.input_transform(Vb.data(), Cs, Q.data(), g0, nt);
        for (int t = 0; t < nt; ++t) {  // Gb[xi][t] = gw g gw^T over vectors of output channels
          const T* g0p = D.data() + L.out_at(g0 + t, OCp);
          for (int oc0 = 0; oc0 < OCp; oc0 += kv) {
            V g[M], e[N][M], r[N];
            for (int j = 0; j < M; ++j) {  // e = gw g, column by column
              for (int i = 0; i < M; ++i) g[i] = load(g0p + (size_t(i) * DW + j) * OCp + oc0);
              W::gw(r, g, 1);
              for (int i = 0; i < N; ++i) e[i][j] = r[i];
            }
            for (int i = 0; i < N; ++i) {
              W::gw(r, &e[i][0], 1);
              for (int j = 0; j < N; ++j) store(Gb.data() + (i * N + j) * L.plane(OCp) + size_t(t) * OCp + oc0, r[j]);
            }
          }
        }
        for (int xi = 0; xi < NN; ++xi)  // Ms[xi] (Cs, OCp) += Vb[xi]^T . Gb[xi], rows in passes of kRows
          simd::gemm(Ms.data() + size_t(xi) * Cs * OCp, OCp, Vb.data() + xi * L.plane(Cs), 1, Cs,
                     Gb.data() + xi * L.plane(OCp), OCp, Cs, OCp, nt, simd::Store::add);
      }
    });
  }
  // dw = AW^T M AW per filter, over vectors of output channels (M summed over the threads' parts in thread order)
#pragma omp parallel for schedule(static)
  for (int c = 0; c < s.C; ++c)
    for (int oc0 = 0; oc0 < s.OC; oc0 += kv) {
      V m[N][N], e[R][N];
      for (int xi = 0; xi < NN; ++xi) m[xi / N][xi % N] = parts.vec((size_t(xi) * Cs + c) * OCp + oc0);
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < N; ++j) {
          V sum{};
          for (int k = 0; k < N; ++k)
            if (W::AWT[i][k] != 0) sum += T(W::AWT[i][k]) * m[k][j];
          e[i][j] = sum;
        }
      alignas(64) T out[R][R][kv];
      for (int i = 0; i < R; ++i)
        for (int j = 0; j < R; ++j) {
          V sum{};
          for (int k = 0; k < N; ++k)
            if (W::AWT[j][k] != 0) sum += T(W::AWT[j][k]) * e[i][k];
          store(out[i][j], sum);
        }
      for (int l = 0; l < std::min(kv, s.OC - oc0); ++l)
        for (int k = 0; k < R * R; ++k) dw[(size_t(oc0 + l) * s.C + c) * R * R + k] = out[k / R][k % R][l];
    }
  for (int oc = 0; oc < s.OC; ++oc) db[oc] = parts.at(nm + oc);
}

}  // namespace

bool winograd_applies(const ConvShape& s) { return s.stride == 1 && (s.K == 3 || s.K == 5); }

template <class T> void conv2d_winograd_forward_cpu(T* out, const T* in, const T* w, const T* b, const ConvShape& s) {
  if (s.K == 5)
    forward<T, 4, 5>(out, in, w, b, s);
  else
    forward<T, 2, 3>(out, in, w, b, s);
}

template <class T> void conv2d_winograd_weight_grad_cpu(T* dw, T* db, const T* dout, const T* in, const ConvShape& s) {
  if (s.K == 5)
    weight_grad<T, 4, 5>(dw, db, dout, in, s);
  else
    weight_grad<T, 2, 3>(dw, db, dout, in, s);
}

template void conv2d_winograd_forward_cpu<float>(float*, const float*, const float*, const float*, const ConvShape&);
template void conv2d_winograd_forward_cpu<double>(double*, const double*, const double*, const double*,
                                                  const ConvShape&);
template void conv2d_winograd_weight_grad_cpu<float>(float*, float*, const float*, const float*, const ConvShape&);
template void conv2d_winograd_weight_grad_cpu<double>(double*, double*, const double*, const double*, const ConvShape&);

}  // namespace rs
