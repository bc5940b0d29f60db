#include "sweep/search.h"

#include <algorithm>
#include <cmath>

#include "config/config.h"
#include "error.h"
#include "kernels/philox.h"

namespace rs {
namespace {

// `v` as the space holds it: a list's own element (an integer read back from a
// study as 1024.0 is the list's 1024), an integer for int_uniform.
TomlValue typed(const Dimension& d, const TomlValue& v) {
  if (d.kind == Distribution::values) {
    if (const std::optional<double> k = tpe_coordinate(d, v)) return d.values[size_t(*k)];
  } else if (d.kind == Distribution::int_uniform && v.number()) {
    return TomlValue(int64_t(std::llround(*v.number())));
  } else if (v.number()) {
    return TomlValue(*v.number());
  }
  return v;
}

}  // namespace

Search::Search(const SweepConfig& s, const std::string& base_text) : m_sweep(s) {
  for (const Dimension& d : s.space)
    if (std::optional<TomlValue> v = config_value_at(base_text, d.key)) m_config_values.emplace_back(d.key, *v);
}

std::vector<std::optional<double>> Search::coordinates(const Overrides& values) const {
  std::vector<std::optional<double>> x;
  for (const Dimension& d : m_sweep.space) {
    std::optional<double> c;
    for (const Overrides* o : {&m_config_values, &values})  // a trial's own value over the config's
      for (const auto& [k, v] : *o)
        if (k == d.key) c = tpe_coordinate(d, v);
    x.push_back(c);
  }
  return x;
}

const Overrides& Search::start(int64_t trial) {
  m_running.insert(trial);
  auto it = m_values.find(trial);
  if (it == m_values.end()) {
    const bool searched = m_sweep.method == "tpe" && trial > int64_t(m_sweep.enqueue.size());
    it = m_values.emplace(trial, searched ? propose(trial) : make_trial(m_sweep, trial).params).first;
  }
  return it->second;
}

const Overrides& Search::params(int64_t trial) const { return m_values.at(trial); }

void Search::restore(int64_t trial, const Overrides& values) {
  if (trial == 0) return m_values.emplace(0, Overrides{}), void();  // the config as written
  Overrides v;
  for (const Dimension& d : m_sweep.space)
    for (const auto& [k, x] : values)
      if (k == d.key) v.emplace_back(k, typed(d, x));
  m_values[trial] = std::move(v);
}

Search::Observed& Search::entry(int64_t trial) {
  Observed& o = m_obs[trial];
  if (o.x.empty()) o.x = coordinates(m_values.count(trial) ? m_values.at(trial) : Overrides{});
  return o;
}

void Search::rung(int64_t trial, int64_t epoch, double val_accuracy) { entry(trial).at.emplace(epoch, val_accuracy); }

void Search::end(int64_t trial, std::optional<TrialStatus> status, double best_val_accuracy) {
  m_running.erase(trial);
  if (status == TrialStatus::completed) rung(trial, kComplete, best_val_accuracy);
  if (status == TrialStatus::diverged) {  // bad at every level
    Observed& o = entry(trial);
    o.at.clear();
    o.diverged = true;
  }
}

size_t Search::observed() const { return m_obs.size(); }

int64_t Search::warm_start(const Study& old, const std::string& path) {
  for (const std::string& k : old.keys)
    if (std::none_of(m_sweep.space.begin(), m_sweep.space.end(), [&](const Dimension& d) { return d.key == k; }))
      fail("{}: warm start: the study searched \"{}\", which is not a key of this sweep.space", path, k);
  for (const Dimension& d : m_sweep.space)
    if (std::find(old.keys.begin(), old.keys.end(), d.key) == old.keys.end())
      fail("{}: warm start: the study did not search \"{}\" of this sweep.space", path, d.key);
  int64_t id = -int64_t(old.rows.size()), outside = 0;  // older than every trial of this sweep, in the study's order
  for (const TrialRow& r : old.rows) {
    Observed o;
    o.x = coordinates(r.params);
    outside += std::count(o.x.begin(), o.x.end(), std::nullopt) > 0;
    if (auto c = old.curves.find(r.id); c != old.curves.end())
      if (auto v = c->second.find("val_accuracy"); v != c->second.end())
        for (const auto& [e, x] : rung_results(m_sweep, v->second, int64_t(v->second.size()))) o.at.emplace(e, x);
    if (r.status == TrialStatus::completed) o.at.emplace(kComplete, r.best_val_accuracy);
    o.diverged = r.status == TrialStatus::diverged;
    if (o.diverged) o.at.clear();
    if (o.diverged || !o.at.empty()) m_obs.emplace(id, std::move(o));
    ++id;
  }
  return outside;
}

Overrides Search::propose(int64_t trial) const {
  if (int64_t(observed()) < m_sweep.tpe.startup_trials) return make_trial(m_sweep, trial).params;
  // the level: the highest with at least dims + 1 results
  std::map<int64_t, size_t> count;
  for (const auto& [t, o] : m_obs)
    for (const auto& [level, v] : o.at) ++count[level];
  int64_t level = -1;
  for (const auto& [l, n] : count)
    if (n >= m_sweep.space.size() + 1 || level < 0) level = l;
  // good: the best gamma(n) at that level (ties: the older trial); bad: the rest, diverged and running ones
  std::vector<std::pair<double, int64_t>> ranked;
  for (const auto& [t, o] : m_obs)
    if (auto v = o.at.find(level); v != o.at.end()) ranked.emplace_back(-v->second, t);
  std::sort(ranked.begin(), ranked.end());
  const size_t n_good = std::min<size_t>(size_t(std::ceil(0.1 * double(ranked.size()))), 25);
  std::vector<TpePoint> good, bad;
  for (size_t k = 0; k < ranked.size(); ++k)
    (k < n_good ? good : bad).push_back({ranked[k].second, m_obs.at(ranked[k].second).x});
  for (const auto& [t, o] : m_obs)
    if (o.diverged) bad.push_back({t, o.x});
  for (int64_t t : m_running) {
    const auto o = m_obs.find(t);
    if (t != trial && m_values.count(t) && (o == m_obs.end() || !o->second.at.count(level)))
      bad.push_back({t, coordinates(m_values.at(t))});
  }
  return tpe_propose(m_sweep.space, good, bad, m_sweep.tpe,
                     rng_key(uint64_t(m_sweep.seed), 0x54504531u /* "TPE1" */, uint64_t(trial)));
}

}  // namespace rs
