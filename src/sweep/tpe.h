// The tree-structured Parzen estimator (Bergstra et al. 2011), univariate,
// with the choices of Optuna's default TPESampler: the best gamma(n) =
// min(ceil(n / 10), 25) observations are "good", the rest "bad"; each key gets
// a good density l(x) and a bad density g(x) (truncated Gaussian mixtures
// with a prior component for numbers, smoothed frequencies for lists of
// values), `candidates` samples are drawn from l and the one with the
// highest l(x) / g(x) is proposed, key by key. Pure and deterministic: the
// same points and random key give the same proposal.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "sweep/space.h"

namespace rs {

// A trial as the sampler sees it: one coordinate per dimension of the space
// (nothing where the trial has no value in it): the index into a list of
// values, log(x) for log_uniform, x otherwise.
struct TpePoint {
  int64_t trial = 0;  // older points (smaller) come first; it orders the weights
  std::vector<std::optional<double>> x;
};

// The coordinate of `v` in `d`; nothing when `v` is not in the space.
std::optional<double> tpe_coordinate(const Dimension& d, const TomlValue& v);

// `good`: the best observations; `bad`: the others (and, as the constant
// liar, trials still running). `key`: this proposal's random stream.
Overrides tpe_propose(const std::vector<Dimension>& space, const std::vector<TpePoint>& good,
                      const std::vector<TpePoint>& bad, const TpeOptions& o, uint64_t key);

// Optuna's default weights for n observations ordered oldest first: all 1
// below 25; past that, the newest 25 weigh 1 and the older ramp up from 1/n.
std::vector<double> tpe_weights(size_t n);

}  // namespace rs
