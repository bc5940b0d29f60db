// ranksweep report STUDY.h5: leaderboard, default vs best, the best trials'
// values side by side with the default's, a sensitivity table (accuracy by
// each hyperparameter's values; continuous values in quartile bins) and each
// hyperparameter's importance: the share of the variance of validation
// accuracy its values explain on their own (the correlation ratio eta^2 over
// the same groups; fANOVA's main effect with the key's marginal estimated by
// group means instead of a random forest).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include "app/commands.h"
#include "error.h"
#include "io/progress.h"
#include "sweep/study.h"

namespace rs {
namespace {

// A trial's value of key k: numbers to 4 significant digits (integers whole), "?" if it has none.
std::string param(const TrialRow& r, const std::string& k) {
  for (const auto& [key, v] : r.params)
    if (key == k) {
      const std::optional<double> x = v.number();
      if (!x) return v.text();
      return *x == std::round(*x) && std::abs(*x) < 1e15 ? fmt::format("{}", int64_t(*x)) : fmt::format("{:.4g}", *x);
    }
  return std::string("?");
}

bool trained(const TrialRow& r) {
  return r.status != TrialStatus::failed && r.status != TrialStatus::diverged && r.epochs > 0;
}

void print_counts(const std::string& path, const Study& s) {
  std::map<std::string, int> status;
  for (const TrialRow& r : s.rows) ++status[to_string(r.status)];
  std::string counts;
  for (const auto& [k, n] : status) counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, k);
  fmt::print("{}: {} trials ({})\n\n", path, s.rows.size(), counts);
}

// The ten best by validation accuracy (`ranked`: every row, best first).
void print_leaderboard(const Study& s, const std::vector<const TrialRow*>& ranked) {
  fmt::print("leaderboard (by best validation accuracy; test accuracy at that epoch)\n");
  std::string head = fmt::format("{:>5} {:<9} {:>6}", "trial", "status", "epochs");
  auto width = [](const std::string& k) { return std::max<size_t>(14, k.size()); };
  for (const std::string& k : s.keys) head += fmt::format(" {:>{}}", k, width(k));
  fmt::print("{} {:>8} {:>8} {:>8}\n", head, "val %", "test %", "seconds");
  for (size_t i = 0; i < std::min<size_t>(ranked.size(), 10); ++i) {
    const TrialRow& r = *ranked[i];
    std::string line = fmt::format("{:>5} {:<9} {:>6}", r.id, to_string(r.status), r.epochs);
    for (const std::string& k : s.keys) line += fmt::format(" {:>{}}", param(r, k), width(k));
    fmt::print("{} {:>8.2f} {:>8.2f} {:>8.1f}\n", line, 100 * r.best_val_accuracy, 100 * r.test_accuracy,
               r.wall_seconds);
  }
}

void print_failures(const Study& s) {
  std::vector<const TrialRow*> bad;
  for (const TrialRow& r : s.rows)
    if (r.status == TrialStatus::failed || r.status == TrialStatus::diverged) bad.push_back(&r);
  if (bad.empty()) return;
  fmt::print("\nfailed and diverged trials\n");
  for (const TrialRow* r : bad) fmt::print("{:>5} {:<9} {}\n", r->id, to_string(r->status), one_line(r->message, 200));
}

// Test accuracy and error of the default (trial 0) against the best, and the values that differ.
void print_default_vs_best(const Study& s, const TrialRow* def) {
  const int b = best_row(s);
  if (b < 0 || !def || def->status == TrialStatus::failed) return;
  const TrialRow& best = s.rows[size_t(b)];
  const double e0 = 1 - def->test_accuracy, e1 = 1 - best.test_accuracy;
  fmt::print(
      "\ndefault (trial 0) vs best (trial {}): test accuracy {:.2f}% -> {:.2f}%, test error {:.2f}% -> "
      "{:.2f}% ({:+.1f}% relative)\n",
      best.id, 100 * def->test_accuracy, 100 * best.test_accuracy, 100 * e0, 100 * e1,
      e0 > 0 ? 100 * (e1 - e0) / e0 : 0.0);
  for (const std::string& k : s.keys)
    if (param(*def, k) != param(best, k)) fmt::print("  {}: {} -> {}\n", k, param(*def, k), param(best, k));
}

// The default and the best three that trained, side by side.
void print_side_by_side(const Study& s, const TrialRow* def, const std::vector<const TrialRow*>& ranked) {
  const bool any = std::any_of(s.rows.begin(), s.rows.end(), [](const TrialRow& r) { return r.epochs > 0; });
  if (!def || !any) return;
  std::vector<const TrialRow*> cols{def};
  for (const TrialRow* r : ranked)
    if (r != def && cols.size() < 4 && (r->status == TrialStatus::completed || r->status == TrialStatus::pruned))
      cols.push_back(r);
  fmt::print("\n{:>22}", "");
  for (const TrialRow* r : cols) fmt::print(" {:>14}", r == def ? "default" : fmt::format("#{}", r->id));
  for (const std::string& k : s.keys) {
    fmt::print("\n{:>22}", k);
    for (const TrialRow* r : cols) fmt::print(" {:>14}", param(*r, k));
  }
  for (const auto& [label, get] : std::vector<std::pair<const char*, std::function<std::string(const TrialRow&)>>>{
           {"epochs", [](const TrialRow& r) { return std::to_string(r.epochs); }},
           {"val %", [](const TrialRow& r) { return fmt::format("{:.2f}", 100 * r.best_val_accuracy); }},
           {"test %", [](const TrialRow& r) { return fmt::format("{:.2f}", 100 * r.test_accuracy); }}}) {
    fmt::print("\n{:>22}", label);
    for (const TrialRow* r : cols) fmt::print(" {:>14}", get(*r));
  }
  fmt::print("\n");
}

// The trained trials grouped by their value of key k (numbers with more than
// six distinct values in quartile bins): group label -> trials.
std::map<std::string, std::vector<const TrialRow*>> groups_by_value(const Study& s, const std::string& k) {
  std::vector<std::pair<std::string, const TrialRow*>> vals;
  std::vector<double> nums;
  bool numeric = true;
  for (const TrialRow& r : s.rows) {
    if (!trained(r)) continue;
    const std::string v = param(r, k);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    numeric = numeric && end && *end == '\0';
    nums.push_back(x);
    vals.emplace_back(v, &r);
  }
  std::map<std::string, int> distinct;
  for (auto& [v, r] : vals) ++distinct[v];
  if (numeric && distinct.size() > 6) {
    std::vector<double> q = nums;
    std::sort(q.begin(), q.end());
    auto cut = [&](double f) { return q[size_t(f * double(q.size() - 1))]; };
    const double c[5] = {cut(0), cut(0.25), cut(0.5), cut(0.75), cut(1)};
    for (size_t i = 0; i < vals.size(); ++i) {
      int bin = 0;
      while (bin < 3 && nums[i] > c[bin + 1]) ++bin;
      vals[i].first = fmt::format("[{:.3g}, {:.3g}]", c[bin], c[bin + 1]);
    }
  }
  std::map<std::string, std::vector<const TrialRow*>> groups;
  for (auto& [v, r] : vals) groups[v].push_back(r);
  return groups;
}

// Accuracy by each key's values after `common` epochs, then each key's
// importance (eta^2 of validation accuracy over those groups).
void print_sensitivity(const Study& s, int64_t common) {
  auto at_common = [&](const TrialRow& r, const char* col) -> double {
    const auto c = s.curves.find(r.id);
    if (c == s.curves.end() || !c->second.count(col) || int64_t(c->second.at(col).size()) < common) return NAN;
    return c->second.at(col)[size_t(common - 1)];
  };
  fmt::print(
      "\nsensitivity (trials that trained: mean validation and test accuracy after {} epoch(s), best validation "
      "accuracy of any epoch)\n",
      common);
  std::vector<std::tuple<double, std::string, size_t>> importance;  // eta^2, key, groups
  for (const std::string& k : s.keys) {
    const auto groups = groups_by_value(s, k);
    fmt::print("  {}\n", k);
    double total = 0, between = 0, grand = 0;  // variance of val accuracy at the common epoch: all, between groups
    size_t n = 0;
    for (const TrialRow& r : s.rows)
      if (const double x = at_common(r, "val_accuracy"); trained(r) && std::isfinite(x)) grand += x, ++n;
    grand /= double(std::max<size_t>(n, 1));
    for (const auto& [v, g] : groups) {
      double mean = 0, best = 0, test = 0;
      size_t m = 0;
      for (const TrialRow* r : g) {
        const double x = at_common(*r, "val_accuracy");
        if (std::isfinite(x)) total += (x - grand) * (x - grand), ++m;
        mean += x, test += at_common(*r, "test_accuracy"), best = std::max(best, r->best_val_accuracy);
      }
      const double gm = mean / double(g.size());
      if (std::isfinite(gm)) between += double(m) * (gm - grand) * (gm - grand);
      fmt::print("    {:>22}  n={:<3} val mean {:6.2f}%  test mean {:6.2f}%  best val {:6.2f}%\n", v, g.size(),
                 100 * gm, 100 * test / double(g.size()), 100 * best);
    }
    importance.emplace_back(total > 0 ? between / total : 0.0, k, groups.size());
  }
  std::sort(importance.rbegin(), importance.rend());
  fmt::print(
      "\nimportance (share of the variance of validation accuracy after {} epoch(s) explained by each key's values "
      "alone, eta^2; with few trials per group it is biased up)\n",
      common);
  for (const auto& [eta2, k, groups] : importance)
    fmt::print("  {:>22}  {:5.1f}%  {}\n", k, 100 * eta2, std::string(size_t(std::lround(40 * eta2)), '#'));
}

}  // namespace

int report_command(const std::string& path, const Comm& comm) {
  Study s;
  comm.root_only([&] { s = read_study(path); });
  if (!comm.leader()) return 0;
  std::vector<const TrialRow*> ranked;
  for (const TrialRow& r : s.rows) ranked.push_back(&r);
  std::sort(ranked.begin(), ranked.end(), [](auto* a, auto* b) { return a->best_val_accuracy > b->best_val_accuracy; });
  const TrialRow* def = nullptr;
  for (const TrialRow& r : s.rows)
    if (r.id == 0) def = &r;
  print_counts(path, s);
  print_leaderboard(s, ranked);
  print_failures(s);
  print_default_vs_best(s, def);
  print_side_by_side(s, def, ranked);
  // Sensitivity compares trials at the same epoch: the fewest any trial that
  // trained has run (ASHA's first rung), so pruned and full runs mix fairly.
  int64_t common = std::numeric_limits<int64_t>::max();
  for (const TrialRow& r : s.rows)
    if (trained(r)) common = std::min(common, r.epochs);
  if (common == std::numeric_limits<int64_t>::max()) {
    fmt::print("\nno trial has trained an epoch yet: no sensitivity or importance\n");
    return 0;
  }
  print_sensitivity(s, common);
  return 0;
}

}  // namespace rs
