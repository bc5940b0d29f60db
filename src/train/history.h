// A run's history: one column per metric, one value per epoch.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace rs {

struct History {
  std::vector<std::string> order;  // column order as first added
  std::map<std::string, std::vector<double>> cols;
  void add(const std::string& name, double v) {
    if (!cols.count(name)) order.push_back(name);
    cols[name].push_back(v);
  }
  size_t epochs() const { return cols.empty() ? 0 : cols.begin()->second.size(); }
};

// Where a run stopped inside an epoch (a signal or the walltime): the steps of
// the epoch already trained (steps_per_epoch: all trained, evaluation not yet
// done), every rank's partial loss/correct sums (ranks x 2, rank order) and
// the epoch's training seconds so far. step 0: at an epoch boundary.
struct EpochPosition {
  int64_t step = 0;
  std::vector<double> sums;
  double train_seconds = 0;
};

}  // namespace rs
