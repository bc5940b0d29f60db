// What the CPU kernels that do not call OpenBLAS share (Winograd and sparse
// convolution, dense layers): the vector type, a channels-last copy, the
// register-blocked matrix product and the sparse paths' accumulation. GCC/Clang vector
// extensions (64-byte vectors; the compiler splits them for narrower units);
// loads and stores through an unaligned, may-alias type: plain assignments
// keep the sums in registers, where memcpy into an array spilled them.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace rs::simd {

template <class T> struct VecOf {
  typedef T type __attribute__((vector_size(64)));
  typedef T unaligned __attribute__((vector_size(64), aligned(sizeof(T)), __may_alias__));
};
template <class T> using Vec = typename VecOf<T>::type;
template <class T> inline Vec<T> load(const T* p) { return *reinterpret_cast<const typename VecOf<T>::unaligned*>(p); }
template <class T> inline void store(T* p, Vec<T> v) { *reinterpret_cast<typename VecOf<T>::unaligned*>(p) = v; }
template <class T> constexpr int kV = int(sizeof(Vec<T>) / sizeof(T));  // values per vector
constexpr int kRows = 6;  // rows per pass: 6 x 4 vectors of sums, + 4 loaded, + 1 broadcast <= 32 registers

inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// Scratch memory that starts on a cache line, so a whole-vector load or store
// at a multiple of 16 floats touches one line, not two (malloc aligns to 16
// bytes only: a vector access then splits two lines). The kernels' per-thread
// scratch is a Buffer, kept across calls.
template <class T> struct LineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kLine{64};
  LineAllocator() = default;
  template <class U> LineAllocator(const LineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kLine)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kLine); }
  template <class U> bool operator==(const LineAllocator<U>&) const { return true; }
};
template <class T> using Buffer = std::vector<T, LineAllocator<T>>;

// The share of non-zero values in x[0, n): which backward path a gradient takes.
template <class T> double density(const T* x, size_t n) {
  size_t nz = 0;
#pragma omp parallel for simd reduction(+ : nz) schedule(static)
  for (size_t i = 0; i < n; ++i) nz += x[i] != T(0);
  return n ? double(nz) / double(n) : 1.0;
}

#if defined(__AVX512F__)
// GCC 12's AVX-512 unpack and shuffle intrinsics start from a self-initialised
// "undefined" vector, which -W(maybe-)uninitialized reports where they inline
// (GCC bug 105593): silenced for the transposes only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// r[16] = its transpose (rows of 16 floats): pairs of rows interleaved, then
// quads, then 128-bit lanes across the four groups of four rows.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2)
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  auto lo = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  auto hi = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  for (int i = 0; i < 16; i += 4)  // r[i + k], lane L: column 4 L + k of rows i .. i + 3
    r[i] = lo(t[i], t[i + 2]), r[i + 1] = hi(t[i], t[i + 2]), r[i + 2] = lo(t[i + 1], t[i + 3]),
    r[i + 3] = hi(t[i + 1], t[i + 3]);
  for (int k = 0; k < 4; ++k) {
    t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88), t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xdd);
    t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
    t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xdd);
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88), r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
    r[4 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88);
    r[12 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xdd);
  }
}

// f(h, x0, n, keep, c0) for each run of 16 pixels from x0 in row h (the
// first n in the image, `keep` their mask) and each 16 channels from c0.
template <class F> inline void for_blocks16(int H, int W, int C, F&& f) {
  for (int h = 0; h < H; ++h)
    for (int x0 = 0; x0 < W; x0 += 16) {
      const int n = std::min(16, W - x0);
      const __mmask16 keep = __mmask16((1u << n) - 1);
      for (int c0 = 0; c0 < C; c0 += 16) f(h, x0, n, keep, c0);
    }
}
#endif

// Q (rows, cols, cs) = x (C, H, W) channels-last at (pad, pad), zeros elsewhere
// (the border, rows and columns past it, channels from C to the stride cs).
// AVX-512 floats with cs a multiple of 16: 16 x 16 blocks transposed in registers.
template <class T> void to_channels_last(T* Q, const T* x, int C, int H, int W, int pad, int rows, int cols, int cs) {
  std::fill_n(Q, size_t(rows) * cols * cs, T(0));
  const size_t HW = size_t(H) * W;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (cs % 16 == 0) {
      for_blocks16(H, W, C, [&](int h, int x0, int n, __mmask16 keep, int c0) {
        __m512 r[16];
        for (int k = 0; k < 16; ++k)
          r[k] = c0 + k < C ? _mm512_maskz_loadu_ps(keep, x + (c0 + k) * HW + size_t(h) * W + x0) : _mm512_setzero_ps();
        transpose16(r);
        for (int p = 0; p < n; ++p) _mm512_storeu_ps(Q + (size_t(h + pad) * cols + pad + x0 + p) * cs + c0, r[p]);
      });
      return;
    }
#endif
  for (int h = 0; h < H; ++h)  // each pixel's channels together: Q written in order
    for (int w = 0; w < W; ++w) {
      T* dst = Q + (size_t(h + pad) * cols + pad + w) * cs;
      const T* src = x + size_t(h) * W + w;
      for (int c = 0; c < C; ++c) dst[c] = src[c * HW];
    }
}

// y (C, H, W) = Y's first H x W pixels (rows of cols pixels, channel stride cs)
// + b[c]. AVX-512 floats: 16 x 16 blocks transposed in registers (scalar code
// reads Y at a stride that maps to a quarter of L1's sets, or gathers).
template <class T> void from_channels_last(T* y, const T* Y, const T* b, int C, int H, int W, int cols, int cs) {
  const size_t HW = size_t(H) * W;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for_blocks16(H, W, C, [&](int h, int x0, int n, __mmask16 keep, int c0) {
      __m512 r[16];
      for (int p = 0; p < 16; ++p)
        r[p] = p < n ? _mm512_loadu_ps(Y + (size_t(h) * cols + x0 + p) * cs + c0) : _mm512_setzero_ps();
      transpose16(r);
      for (int c = c0; c < std::min(C, c0 + 16); ++c)
        _mm512_mask_storeu_ps(y + size_t(c) * HW + size_t(h) * W + x0, keep,
                              _mm512_add_ps(r[c - c0], _mm512_set1_ps(b[c])));
    });
    return;
  }
#endif
  for (int c = 0; c < C; ++c)
    for (int h = 0; h < H; ++h)
      for (int w = 0; w < W; ++w) y[size_t(c) * HW + size_t(h) * W + w] = Y[(size_t(h) * cols + w) * cs + c] + b[c];
}
#if defined(__AVX512F__)
#pragma GCC diagnostic pop
#endif

// How a product's sums reach c: written, added to what is there, or written
// past the caches (non-temporal stores, AVX-512 floats with c and ldc on
// 64-byte lines, else written): for a result larger than the last-level
// cache that is read once, later (the dense layer's weight gradient: no
// read for ownership of lines that are only overwritten).
enum class Store { set, add, stream };
// After streaming stores, before the data is shared: orders them first.
inline void stream_fence() {
#if defined(__AVX512F__)
  _mm_sfence();
#endif
}

// *p = v, *p += v, or v past the caches (AVX-512 floats, p on a 64-byte line; else written).
template <class T> inline void put(T* p, Vec<T> v, Store st) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (st == Store::stream && reinterpret_cast<uintptr_t>(p) % 64 == 0) {
      _mm512_stream_ps(p, reinterpret_cast<__m512>(v));
      return;
    }
#endif
  store(p, st == Store::add ? load(p) + v : v);
}

// c[t][j] (+)= sum_k a[t * ars + k * acs] b[k * ldb + j] for ROWS rows t, NV
// vectors of j and k < K: rows of b streamed, one value of a broadcast per row.
template <class T, int ROWS, int NV, Store kStore>
inline void product(T* c, size_t ldc, const T* a, size_t ars, size_t acs, const T* b, size_t ldb, int K) {
  using V = Vec<T>;
  constexpr int kv = kV<T>;
  V acc[ROWS][NV] = {};
  for (int k = 0; k < K; ++k) {
    V w[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) w[j] = load(b + size_t(k) * ldb + j * kv);
#pragma GCC unroll 8
    for (int t = 0; t < ROWS; ++t) {
      const T x = a[t * ars + k * acs];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[t][j] += x * w[j];
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < ROWS; ++t)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) put(c + t * ldc + j * kv, acc[t][j], kStore);
}

// product over the vectors of j < n (a multiple of kv): four at a time, then
// two, then one (a pass of 6 x 1 vectors has too few independent sums to keep
// the FMA units busy: Winograd's input gradient of a 64 -> 32 conv was 1.9x
// slower than its forward). The same sums in the same order either way.
template <class T, int ROWS, Store kStore>
inline void product_row(T* c, size_t ldc, const T* a, size_t ars, size_t acs, const T* b, size_t ldb, int K, int n) {
  constexpr int kv = kV<T>;
  int j = 0;
  for (; j + 4 * kv <= n; j += 4 * kv) product<T, ROWS, 4, kStore>(c + j, ldc, a, ars, acs, b + j, ldb, K);
  if (j + 2 * kv <= n) product<T, ROWS, 2, kStore>(c + j, ldc, a, ars, acs, b + j, ldb, K), j += 2 * kv;
  for (; j < n; j += kv) product<T, ROWS, 1, kStore>(c + j, ldc, a, ars, acs, b + j, ldb, K);
}

// Per-thread partial sums, reduced in thread order, so results depend on the
// thread count, never on timing: inside a parallel region each thread
// registers its buffer (mine); after it, at(i) sums value i over the threads
// in thread order, vec(i) a vector of them.
template <class T> class ThreadSums {
 public:
  ThreadSums() : m_parts(size_t(omp_get_max_threads()), nullptr) {}
  void mine(T* p) { m_parts[size_t(omp_get_thread_num())] = p; }
  T at(size_t i) const {
    T sum = 0;
    for (const T* q : m_parts)
      if (q) sum += q[i];
    return sum;
  }
  Vec<T> vec(size_t i) const {
    Vec<T> sum{};
    for (const T* q : m_parts)
      if (q) sum += load(q + i);
    return sum;
  }

 private:
  std::vector<T*> m_parts;
};

// Vectors of sums an accumulation pass keeps in registers: every sum is its
// own dependency chain, and an FMA's latency (4 cycles) times its throughput
// (2 a cycle) needs 8 or more chains to keep both units busy. 12 vectors + one
// loaded + the broadcast fit AVX-512's 32 registers; a 64-byte vector is two
// registers elsewhere (16 in all), so 6 there.
#if defined(__AVX512F__)
constexpr int kAccVectors = 12;
#else
constexpr int kAccVectors = 6;
#endif

// dst[0, NV vectors) (=, +=, streamed: st) sum_j g[j] * src[j][off, ...), j < count, in order.
template <class T, int NV>
inline void accumulate_pass(T* dst, const T* const* src, size_t off, const T* g, int count, Store st) {
  using V = Vec<T>;
  constexpr int kv = kV<T>;
  V r[NV] = {};
  const bool add = st == Store::add;
  if (add)
#pragma GCC unroll 12
    for (int i = 0; i < NV; ++i) r[i] = load(dst + i * kv);
  for (int j = 0; j < count; ++j) {
    const T* x = src[j] + off;
    const T gj = g[j];
#pragma GCC unroll 12
    for (int i = 0; i < NV; ++i) r[i] += gj * load(x + i * kv);
  }
  const Store to = add ? Store::set : st;  // the sums already hold dst
#pragma GCC unroll 12
  for (int i = 0; i < NV; ++i) put(dst + i * kv, r[i], to);
}

// accumulate_pass<T, 1> .. <T, kAccVectors>, by number of vectors - 1.
template <class T, int... N> constexpr auto pass_table(std::integer_sequence<int, N...>) {
  return std::array{&accumulate_pass<T, N + 1>...};
}

// dst[0, len) (=, +=, streamed: st) sum_j g[j] * src[j][off, off + len), j < count, in
// order: the whole vectors in passes of at most kAccVectors, as even as they
// can be (a run of 10 vectors is one pass, not 8 + 2 with too few chains),
// each kept in registers across the whole list (one load and store of dst per
// pass, not per term); then scalars. Each value's sum runs over j in order,
// whatever the passes. The sparse backward paths' accumulation (conv2d, dense).
template <class T>
void accumulate(T* dst, int len, const T* const* src, size_t off, const T* g, int count, Store st = Store::add) {
  constexpr int kv = kV<T>;
  static constexpr auto pass = pass_table<T>(std::make_integer_sequence<int, kAccVectors>{});
  const int nvec = len / kv;
  for (int done = 0, passes = (nvec + kAccVectors - 1) / kAccVectors; done < nvec; --passes) {
    const int nv = (nvec - done + passes - 1) / passes;
    T* d = dst + done * kv;
    const size_t o = off + size_t(done) * kv;
    pass[size_t(nv) - 1](d, src, o, g, count, st);
    done += nv;
  }
  const int b = nvec * kv;
  if (st != Store::add) std::fill(dst + b, dst + len, T(0));
  for (int j = 0; j < count && b < len; ++j) {
    const T* x = src[j] + off;
    for (int i = b; i < len; ++i) dst[i] += g[j] * x[i];
  }
}

// C (M x N, ldc) (+)= A . B, A(i, k) = a[i * ars + k * acs], B (K x N, ldb):
// rows in passes of kRows (then the remainder), columns in vectors (then the
// remainder, < kv, scalar). Single-threaded: callers split C.
template <class T> void gemm(T* c, size_t ldc, const T* a, size_t ars, size_t acs, const T* b, size_t ldb, int M, int N,
                             int K, Store mode) {
  const int nv = N / kV<T> * kV<T>;
  for (int i = 0; i < M; i += kRows) {
    T* ci = c + size_t(i) * ldc;
    const T* ai = a + size_t(i) * ars;
    const int rows = std::min(kRows, M - i);
    using Pass = void (*)(T*, size_t, const T*, size_t, size_t, const T*, size_t, int, int);
#define RS_PASSES(m)                                                                                 \
  {                                                                                                  \
    nullptr, product_row<T, 1, m>, product_row<T, 2, m>, product_row<T, 3, m>, product_row<T, 4, m>, \
        product_row<T, 5, m>, product_row<T, 6, m>                                                   \
  }
    static constexpr Pass kPass[3][kRows + 1] = {RS_PASSES(Store::set), RS_PASSES(Store::add),
                                                 RS_PASSES(Store::stream)};
#undef RS_PASSES
    const bool add = mode == Store::add;
    kPass[int(mode)][rows](ci, ldc, ai, ars, acs, b, ldb, K, nv);
    for (int t = 0; t < rows; ++t)
      for (int j = nv; j < N; ++j) {
        T sum = add ? ci[t * ldc + j] : T(0);
        for (int k = 0; k < K; ++k) sum += ai[t * ars + k * acs] * b[size_t(k) * ldb + j];
        ci[t * ldc + j] = sum;
      }
  }
}

}  // namespace rs::simd
