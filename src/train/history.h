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

}  // namespace rs
