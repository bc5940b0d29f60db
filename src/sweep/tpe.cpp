#include "sweep/tpe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/philox.h"

namespace rs {
namespace {

// Uniform doubles in [0, 1) with 48 random bits, from the counter-based Philox stream `key`.
struct Rng {
  uint64_t key, stream;
  uint64_t i = 0;
  double uniform() {
    const double hi = philox_uniform(key, stream, i++), lo = philox_uniform(key, stream, i++);
    return hi + lo / 16777216.0;
  }
  double normal() {  // Box-Muller; 1 - u is in (0, 1]
    const double u = 1.0 - uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
  }
  size_t pick(const std::vector<double>& w) {  // index with probability w[i] (w sums to 1)
    double u = uniform();
    for (size_t k = 0; k + 1 < w.size(); ++k)
      if ((u -= w[k]) < 0) return k;
    return w.size() - 1;
  }
};

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// log of the sum of exp(v).
double log_sum_exp(const std::vector<double>& v) {
  const double m = *std::max_element(v.begin(), v.end());
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// The coordinates' bounds: a list's indices, log bounds, integers widened by half a step.
void bounds(const Dimension& d, double* low, double* high) {
  switch (d.kind) {
    case Distribution::values:
      *low = 0, *high = double(d.values.size() - 1);
      return;
    case Distribution::uniform:
      *low = d.low, *high = d.high;
      return;
    case Distribution::log_uniform:
      *low = std::log(d.low), *high = std::log(d.high);
      return;
    case Distribution::int_uniform:
      *low = d.low - 0.5, *high = d.high + 0.5;
      return;
  }
}

// The coordinates of dimension `i` among `points`, with their weights (in the points' order).
void column(const std::vector<TpePoint>& points, size_t i, std::vector<double>* x, std::vector<double>* w) {
  std::vector<const TpePoint*> p;
  for (const TpePoint& q : points) p.push_back(&q);
  std::stable_sort(p.begin(), p.end(), [](auto* a, auto* b) { return a->trial < b->trial; });
  const std::vector<double> all = tpe_weights(p.size());
  for (size_t k = 0; k < p.size(); ++k)
    if (p[k]->x[i]) x->push_back(*p[k]->x[i]), w->push_back(all[k]);
}

// A mixture of Gaussians truncated to [low, high]: one per observation and one
// wide prior at the middle. Bandwidths: the larger gap to a sorted neighbour,
// clipped to [(high - low) / min(100, n + 1), high - low] (Optuna's "magic clip").
struct Parzen {
  double low, high;
  std::vector<double> mu, sigma, weight, mass, log_norm;  // mass: Z, the kernel's mass inside [low, high];
                                                          // log_norm: log(weight / (sigma sqrt(2 pi) Z))

  Parzen(std::vector<double> x, std::vector<double> w, double lo, double hi, double prior_weight) : low(lo), high(hi) {
    const double range = high - low, prior = 0.5 * (low + high);
    std::vector<size_t> order(x.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
    for (size_t k : order) mu.push_back(x[k]), weight.push_back(w[k]);
    const size_t at = size_t(std::lower_bound(mu.begin(), mu.end(), prior) - mu.begin());
    mu.insert(mu.begin() + long(at), prior);
    weight.insert(weight.begin() + long(at), prior_weight);
    const size_t n = mu.size();
    sigma.assign(n, range);
    for (size_t k = 0; k < n; ++k) {
      if (k == at) continue;  // the prior keeps the whole range
      const double left = k > 0 ? mu[k] - mu[k - 1] : -1, right = k + 1 < n ? mu[k + 1] - mu[k] : -1;
      sigma[k] = std::max(left, right);
    }
    const double min_sigma = range / std::min(100.0, double(n) + 1.0);
    for (size_t k = 0; k < n; ++k)
      if (k != at) sigma[k] = std::clamp(sigma[k], min_sigma, range);
    const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
    for (size_t k = 0; k < n; ++k) {
      weight[k] /= total;
      mass.push_back(std::max(normal_cdf((high - mu[k]) / sigma[k]) - normal_cdf((low - mu[k]) / sigma[k]), 1e-300));
      log_norm.push_back(std::log(weight[k]) - std::log(sigma[k] * std::sqrt(2 * M_PI) * mass[k]));
    }
  }
  double sample(Rng& r) const {
    const size_t k = r.pick(weight);
    for (int tries = 0; tries < 1000; ++tries) {  // mu is inside [low, high]: half the draws land there at worst
      const double x = mu[k] + sigma[k] * r.normal();
      if (x >= low && x <= high) return x;
    }
    return std::clamp(mu[k], low, high);
  }
  double log_pdf(double x) const {
    std::vector<double> t(mu.size());
    for (size_t k = 0; k < mu.size(); ++k) {
      const double z = (x - mu[k]) / sigma[k];
      t[k] = log_norm[k] - 0.5 * z * z;
    }
    return log_sum_exp(t);
  }
  // log of the probability of [a, b] (an integer's bin)
  double log_mass(double a, double b) const {
    double p = 0;
    for (size_t k = 0; k < mu.size(); ++k)
      p += weight[k] * (normal_cdf((b - mu[k]) / sigma[k]) - normal_cdf((a - mu[k]) / sigma[k])) / mass[k];
    return std::log(std::max(p, 1e-300));
  }
  // log density, or for integers the log probability of x's bin (x rounded)
  double score(double x, bool integer) const {
    return integer ? log_mass(std::max(x - 0.5, low), std::min(x + 0.5, high)) : log_pdf(x);
  }
};

// A list's values: a mixture of one distribution per observation (its own
// value, plus prior_weight / (n + 1) on every value, normalised) and a uniform
// prior, weighted like the numeric kernels (Optuna's smoothing).
std::vector<double> frequencies(const std::vector<double>& x, const std::vector<double>& w, size_t n_values,
                                double prior_weight) {
  const double spread = prior_weight / double(x.size() + 1), row = 1 + spread * double(n_values);
  double total = prior_weight;
  for (double v : w) total += v;
  std::vector<double> p(n_values, prior_weight / total / double(n_values));
  for (size_t k = 0; k < x.size(); ++k) {
    for (double& v : p) v += w[k] / total * spread / row;
    p[size_t(x[k])] += w[k] / total / row;
  }
  return p;
}

TomlValue value_at(const Dimension& d, double x) {
  switch (d.kind) {
    case Distribution::values:
      return d.values[size_t(x)];
    case Distribution::uniform:
      return TomlValue(std::clamp(x, d.low, d.high));
    case Distribution::log_uniform:
      return TomlValue(std::clamp(std::exp(x), d.low, d.high));
    case Distribution::int_uniform:
      return TomlValue(int64_t(std::clamp(std::round(x), d.low, d.high)));
  }
  return TomlValue(x);
}

}  // namespace

std::vector<double> tpe_weights(size_t n) {
  std::vector<double> w(n, 1.0);
  if (n < 25) return w;
  const size_t ramp = n - 25;
  for (size_t k = 0; k < ramp; ++k)
    w[k] = ramp == 1 ? 1.0 / double(n) : 1.0 / double(n) + (1.0 - 1.0 / double(n)) * double(k) / double(ramp - 1);
  return w;
}

std::optional<double> tpe_coordinate(const Dimension& d, const TomlValue& v) {
  if (d.kind == Distribution::values) {
    for (size_t k = 0; k < d.values.size(); ++k)
      if (d.values[k] == v || (d.values[k].number() && v.number() && *d.values[k].number() == *v.number()))
        return double(k);
    return std::nullopt;
  }
  const std::optional<double> x = v.number();
  if (!x || !(*x >= d.low && *x <= d.high)) return std::nullopt;
  return d.kind == Distribution::log_uniform ? std::log(*x) : *x;
}

Overrides tpe_propose(const std::vector<Dimension>& space, const std::vector<TpePoint>& good,
                      const std::vector<TpePoint>& bad, const TpeOptions& o, uint64_t key) {
  Overrides out;
  for (size_t i = 0; i < space.size(); ++i) {
    const Dimension& d = space[i];
    std::vector<double> xl, wl, xg, wg;
    column(good, i, &xl, &wl);
    column(bad, i, &xg, &wg);
    Rng r{key, uint64_t(i)};
    double best = 0, best_score = -INFINITY;
    if (d.kind == Distribution::values) {
      const std::vector<double> l = frequencies(xl, wl, d.values.size(), o.prior_weight),
                                g = frequencies(xg, wg, d.values.size(), o.prior_weight);
      for (int64_t c = 0; c < o.candidates; ++c) {
        const size_t k = r.pick(l);
        const double score = std::log(l[k]) - std::log(g[k]);
        if (score > best_score) best_score = score, best = double(k);
      }
    } else {
      double low = 0, high = 0;
      bounds(d, &low, &high);
      const Parzen l(xl, wl, low, high, o.prior_weight), g(xg, wg, low, high, o.prior_weight);
      const bool integer = d.kind == Distribution::int_uniform;
      for (int64_t c = 0; c < o.candidates; ++c) {
        const double x = integer ? std::clamp(std::round(l.sample(r)), d.low, d.high) : l.sample(r);
        const double score = l.score(x, integer) - g.score(x, integer);
        if (score > best_score) best_score = score, best = x;
      }
    }
    out.emplace_back(d.key, value_at(d, best));
  }
  return out;
}

}  // namespace rs
