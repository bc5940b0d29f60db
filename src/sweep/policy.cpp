#include "sweep/policy.h"

#include <algorithm>

namespace rs {

SchedulePolicy::SchedulePolicy(Options o) : m_opt(std::move(o)) {
  m_started.insert(m_opt.skip.begin(), m_opt.skip.end());
}

void SchedulePolicy::restore(int64_t trial, TrialStatus status, int64_t epochs) {
  m_started.insert(trial);
  m_state[trial] = {status, epochs};
}

void SchedulePolicy::rung(int64_t trial, int64_t epoch, double val_accuracy) {
  auto& v = m_rungs[epoch];
  for (const auto& [t, x] : v)
    if (t == trial) return;  // a restarted job passing the rung again
  v.emplace_back(trial, val_accuracy);
}

void SchedulePolicy::finished(int64_t trial, TrialStatus status, int64_t epochs) {
  m_running.erase(trial);
  m_state[trial] = {status, epochs};
}

SchedulePolicy::Decision SchedulePolicy::start(Job j) {
  m_running.insert(j.trial);
  return {Action::run, j};
}

SchedulePolicy::Decision SchedulePolicy::next(double now, const Fits& fits) {
  if (m_opt.time_budget > 0 && now > m_opt.time_budget) return {};
  bool passed_over = false;
  if (m_opt.asha)
    for (auto it = m_rungs.rbegin(); it != m_rungs.rend(); ++it) {
      const int64_t epoch = it->first;
      std::vector<std::pair<int64_t, double>> v = it->second;  // arrival order: ties go to the earlier
      std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
      for (size_t i = 0; i < v.size() / size_t(m_opt.reduction); ++i) {
        const auto s = m_state.find(v[i].first);
        // paused at this rung (a checkpoint from an older sweep may be a little past it)
        if (s != m_state.end() && s->second.status == TrialStatus::pruned && s->second.epochs >= epoch &&
            s->second.epochs < epoch * m_opt.reduction && !m_running.count(v[i].first)) {
          const Job j{v[i].first, epoch * m_opt.reduction, false};
          if (!fits || fits(j)) return start(j);
          passed_over = true;
        }
      }
    }
  while (m_next < m_opt.trials && m_started.count(m_next)) ++m_next;
  if (m_next < m_opt.trials) {
    const bool first_rung = m_opt.asha && m_next != 0;
    const Job j{m_next, first_rung ? m_opt.min_epochs : 0, !first_rung};
    if (fits && !fits(j)) return {Action::done, {}, true};
    m_started.insert(m_next++);
    return start(j);
  }
  if (m_opt.asha && !m_running.empty()) return {Action::wait, {}};  // running trials may earn promotions
  return {Action::done, {}, passed_over};
}

}  // namespace rs
