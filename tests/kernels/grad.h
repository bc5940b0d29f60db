// Finite-difference helpers of the kernel tests: the CPU reference kernels in
// double precision, small odd shapes, objective L = sum(y * r) for a fixed
// random r, so dL/dy = r.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace rs::test {

using Vec = std::vector<double>;

inline Vec random_vec(size_t n, std::mt19937& g, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(n);
  for (double& x : v) x = u(g);
  return v;
}

inline double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The largest |a[i] - r[i]|.
template <class A> double worst(const A& a, const Vec& r) {
  double m = 0;
  for (size_t i = 0; i < r.size(); ++i) m = std::max(m, std::abs(double(a[i]) - r[i]));
  return m;
}

// Compares analytic gradient `ana` of f with respect to `x` against central
// differences; elements where skip(i) is true (kinks) are not checked.
inline void check_grad(const char* what, Vec& x, const Vec& ana, const std::function<double()>& f,
                const std::function<bool(size_t)>& skip = nullptr) {
  const double eps = 1e-6;
  double worst = 0;
  size_t checked = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (skip && skip(i)) continue;
    const double keep = x[i];
    x[i] = keep + eps;
    const double fp = f();
    x[i] = keep - eps;
    const double fm = f();
    x[i] = keep;
    const double num = (fp - fm) / (2 * eps);
    const double err = std::abs(num - ana[i]) / std::max({std::abs(num), std::abs(ana[i]), 1e-2});
    worst = std::max(worst, err);
    ++checked;
  }
  INFO(what << ": worst relative error " << worst << " over " << checked << " elements");
  CHECK(checked > 0);
  CHECK(worst < 1e-6);
}

}  // namespace rs::test
