#include "sweep/policy.h"

#include <algorithm>

namespace rs {

SchedulePolicy::SchedulePolicy(Options o) : m_opt(std::move(o)) {
  m_started.insert(m_opt.skip.begin(), m_opt.skip.end());
}

void SchedulePolicy::restore(int64_t trial, TrialStatus status, int64_t epochs) {
  m_started.insert(trial);
  m_running.erase(trial);
  m_state[trial] = {status, epochs};
  refresh(trial);
}

void SchedulePolicy::take(int64_t trial) {
  m_started.insert(trial);
  start({trial, 0, false});
}

void SchedulePolicy::rung(int64_t trial, int64_t epoch, double val_accuracy) {
  std::vector<std::pair<int64_t, Key>>& mine = m_entries[trial];
  for (const auto& [e, k] : mine)
    if (e == epoch) return;  // a restarted job passing the rung again
  const Key k{-val_accuracy, m_arrivals++, trial};
  m_rungs[epoch].results.insert(k);
  mine.emplace_back(epoch, k);
  refresh(trial);
}

void SchedulePolicy::finished(int64_t trial, TrialStatus status, int64_t epochs) {
  m_running.erase(trial);
  m_state[trial] = {status, epochs};
  refresh(trial);
}

void SchedulePolicy::refresh(int64_t trial) {
  const auto mine = m_entries.find(trial);
  if (mine == m_entries.end()) return;
  const auto s = m_state.find(trial);
  for (const auto& [epoch, k] : mine->second) {
    // paused at this rung (a checkpoint from an older sweep may be a little past it)
    const bool paused = s != m_state.end() && s->second.status == TrialStatus::pruned && s->second.epochs >= epoch &&
                        s->second.epochs < epoch * m_opt.reduction && !m_running.count(trial);
    if (paused)
      m_rungs[epoch].paused.insert(k);
    else
      m_rungs[epoch].paused.erase(k);
  }
}

SchedulePolicy::Decision SchedulePolicy::start(Job j) {
  m_running.insert(j.trial);
  refresh(j.trial);
  return {Action::run, j};
}

SchedulePolicy::Decision SchedulePolicy::next(double now, const Fits& fits) {
  if (m_opt.time_budget > 0 && now > m_opt.time_budget) return {};
  bool passed_over = false;
  if (m_opt.asha)
    for (auto it = m_rungs.rbegin(); it != m_rungs.rend(); ++it) {
      const int64_t epoch = it->first;
      const Rung& r = it->second;
      const size_t top = r.results.size() / size_t(m_opt.reduction);
      for (const Key& k : r.paused) {  // best first: once one ranks below the top, so do the rest
        if (r.results.order_of_key(k) >= top) break;
        const Job j{k.trial, epoch * m_opt.reduction, false};
        if (!fits || fits(j)) return start(j);
        passed_over = true;
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
