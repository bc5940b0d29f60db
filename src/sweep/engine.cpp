#include "sweep/engine.h"

#include <algorithm>
#include <queue>

#include "config/config.h"

namespace rs {

SchedulePolicy::Options schedule_options(const SweepConfig& sweep, const std::string& base_text) {
  std::vector<int64_t> skip;
  if (sweep.method == "grid")  // the default's own grid point would re-run trial 0
    for (int64_t id = 1; id < trial_count(sweep); ++id)
      if (same_as_default(make_trial(sweep, id), base_text)) skip.push_back(id);
  return {trial_count(sweep), std::move(skip), sweep.asha, sweep.min_epochs, sweep.reduction, sweep.time_budget};
}

void replay_rungs(const Study& s, const TrialRow& r, const SweepConfig& sweep, SchedulePolicy& policy, Search& search) {
  if (const auto c = s.curves.find(r.id); c != s.curves.end())
    if (const auto v = c->second.find("val_accuracy"); v != c->second.end())
      for (const auto& [e, x] : rung_results(sweep, v->second, r.epochs)) {
        policy.rung(r.id, e, x);
        search.rung(r.id, e, x);
      }
}

void replay_study(Study& s, const SweepConfig& sweep, SchedulePolicy& policy, Search& search) {
  for (TrialRow& r : s.rows) {
    policy.restore(r.id, r.status, r.epochs);
    search.restore(r.id, r.params);
    r.params = search.params(r.id);
    replay_rungs(s, r, sweep, policy, search);
    search.end(r.id, r.status, r.best_val_accuracy);
  }
}

Simulation simulate_sweep(const SweepConfig& sweep, const std::string& base_text, int groups, int64_t epochs,
                          const Objective& f, size_t max_results, Study previous) {
  SchedulePolicy policy(schedule_options(sweep, base_text));
  Search search(sweep, base_text);
  Simulation sim;
  sim.study = std::move(previous);
  replay_study(sim.study, sweep, policy, search);
  Overrides config;
  for (const Dimension& d : sweep.space)
    if (std::optional<TomlValue> v = config_value_at(base_text, d.key)) config.emplace_back(d.key, *v);

  struct Running {
    double end;
    int group;
    Job job;
    bool operator>(const Running& o) const { return end != o.end ? end > o.end : group > o.group; }
  };
  std::priority_queue<Running, std::vector<Running>, std::greater<>> running;
  std::vector<int> asking;
  for (int g = 0; g < groups; ++g) asking.push_back(g);
  double now = 0;
  size_t results = 0;
  while (results < max_results) {
    std::vector<int> waiting;
    for (int g : asking) {
      const SchedulePolicy::Decision d = policy.next(now);
      if (d.action == SchedulePolicy::Action::wait) waiting.push_back(g);
      if (d.action != SchedulePolicy::Action::run) continue;
      const bool fresh =
          std::none_of(sim.study.rows.begin(), sim.study.rows.end(),
                       [&](const TrialRow& r) { return r.id == d.job.trial; }) &&
          std::none_of(sim.started.begin(), sim.started.end(), [&](const auto& s) { return s.first == d.job.trial; });
      const Overrides& p = search.start(d.job.trial);
      if (fresh) sim.started.emplace_back(d.job.trial, p);
      const int64_t from = int64_t(sim.study.curves[d.job.trial]["val_accuracy"].size());
      const int64_t to = d.job.full_budget ? epochs : std::min(d.job.stop_epoch, epochs);
      running.push({now + double(std::max<int64_t>(to - from, 0)) * (1 + g / 4.0), g, d.job});
    }
    asking = std::move(waiting);
    if (running.empty()) break;  // done (or everyone waits on nothing: the policy's bug, not a hang here)
    const Running r = running.top();
    running.pop();
    now = r.end;
    const int64_t id = r.job.trial;
    Overrides values = config;  // the config's values with the trial's on top
    for (const auto& [k, v] : search.params(id)) {
      const std::string& key = k;  // (clang 14 cannot capture a structured binding)
      const auto it = std::find_if(values.begin(), values.end(), [&](const auto& c) { return c.first == key; });
      if (it != values.end())
        it->second = v;
      else
        values.emplace_back(k, v);
    }
    std::vector<double>& curve = sim.study.curves[id]["val_accuracy"];
    const int64_t to = r.job.full_budget ? epochs : std::min(r.job.stop_epoch, epochs);
    const std::vector<int64_t> rungs = asha_rungs(sweep, epochs);
    for (int64_t e = int64_t(curve.size()) + 1; e <= to; ++e) {
      curve.push_back(f(values, e));
      if (std::find(rungs.begin(), rungs.end(), e) != rungs.end()) {
        policy.rung(id, e, curve.back());
        search.rung(id, e, curve.back());
      }
    }
    TrialRow row;
    row.id = id, row.params = search.params(id), row.group = r.group, row.epochs = int64_t(curve.size());
    row.status = row.epochs < epochs ? TrialStatus::pruned : TrialStatus::completed;
    row.best_val_accuracy = curve.empty() ? 0 : *std::max_element(curve.begin(), curve.end());
    row.end_seconds = now;
    const auto old =
        std::find_if(sim.study.rows.begin(), sim.study.rows.end(), [&](const TrialRow& x) { return x.id == id; });
    if (old != sim.study.rows.end())
      *old = row;
    else
      sim.study.rows.push_back(row);
    policy.finished(id, row.status, row.epochs);
    search.end(id, row.status, row.best_val_accuracy);
    ++results;
    asking.push_back(r.group);
  }
  return sim;
}

}  // namespace rs
