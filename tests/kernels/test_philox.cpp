// The counter-based RNG (kernels/philox.h) against published answers.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "kernels/philox.h"

using namespace rs;

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[philox]") {
  // counter (c0, c1, c2, c3) = (ctr_lo, ctr_lo >> 32, ctr_hi, ctr_hi >> 32); key (k0, k1) = (key, key >> 32)
  const U32x4 zero = philox4x32(0, 0, 0);
  CHECK(std::vector<uint32_t>(zero.v, zero.v + 4) ==
        std::vector<uint32_t>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  const U32x4 ones = philox4x32(~0ull, ~0ull, ~0ull);
  CHECK(std::vector<uint32_t>(ones.v, ones.v + 4) ==
        std::vector<uint32_t>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  const U32x4 pi = philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  CHECK(std::vector<uint32_t>(pi.v, pi.v + 4) ==
        std::vector<uint32_t>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}
