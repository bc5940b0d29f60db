// Kernel outputs against the CPU reference, for the [gpu] tests and the
// emulated-kernel tests (header-only: neither links the other's code):
// random inputs, and a comparison in which every value must pass
// |got - ref| <= atol + rtol |ref|, written so that a NaN or inf on either
// side fails (a maximum over differences would skip NaN).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace rs::test {

inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1, float hi = 1) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(g);
  return v;
}

struct Mismatch {
  double worst = 0;  // the largest finite |got - ref|
  size_t bad = 0, non_finite = 0, n = 0;
  std::string describe(const std::string& what) const {
    std::ostringstream s;
    s << what << ": largest finite difference " << worst << ", " << bad << " of " << n << " values off, " << non_finite
      << " NaN/inf";
    return s.str();
  }
};

template <class T> Mismatch mismatch(const T* ref, const T* got, size_t n, double atol, double rtol) {
  Mismatch m;
  m.n = n;
  for (size_t i = 0; i < n; ++i) {
    const double x = double(ref[i]), y = double(got[i]), d = std::abs(x - y);
    if (!std::isfinite(x) || !std::isfinite(y)) ++m.non_finite;
    if (std::isfinite(d)) m.worst = std::max(m.worst, d);
    if (!(d <= atol + rtol * std::abs(x))) ++m.bad;
  }
  return m;
}

}  // namespace rs::test
