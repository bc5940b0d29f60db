// Counter-based random numbers shared by the CPU loops, the CUDA kernels
// (dropout masks, augmentation) and the sweep's random and TPE search:
// Philox4x32-10 and a splitmix64 key mixer. HD inline, no state: a draw is a
// pure function of its key and counter, so any rank count, thread count or
// backend draws the same numbers.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define HD __host__ __device__
#else
#define HD
#endif

namespace rs {

// ---- counter-based RNG: Philox4x32-10 (Salmon et al., SC'11) ----
struct U32x4 {
  uint32_t v[4];
};

HD inline uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// One block of four 32-bit draws for (key, counter). Pure function.
HD inline U32x4 philox4x32(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo) {
  uint32_t c0 = static_cast<uint32_t>(ctr_lo), c1 = static_cast<uint32_t>(ctr_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(ctr_hi), c3 = static_cast<uint32_t>(ctr_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    const uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return U32x4{{c0, c1, c2, c3}};
}

// Uniform float in [0, 1) from the top 24 bits of a draw.
HD inline float u32_to_unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

// The i-th uniform of stream (key, stream): four draws per Philox block.
HD inline float philox_uniform(uint64_t key, uint64_t stream, uint64_t i) {
  const U32x4 r = philox4x32(key, stream, i >> 2);
  return u32_to_unit(r.v[i & 3]);
}

// Mixes 64-bit words into one key (splitmix64 finaliser).
HD inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
HD inline uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b = 0) { return mix64(mix64(mix64(seed) ^ a) ^ b); }

}  // namespace rs
