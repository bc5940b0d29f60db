// Which hyperparameters each trial gets. Trial 0 is the config as written,
// trials 1..E the enqueued ones; after them, grid and random trials are a
// pure function of their number (space.h), and TPE trials are proposed when
// they first start, from every result known then (sweep/tpe.h):
//   - until `startup_trials` trials have results, a TPE trial is the random
//     search's trial of the same number (so TPE and random start alike);
//   - with ASHA, results come at rungs (validation accuracy after that many
//     epochs) and at completion (best validation accuracy); the model is fitted
//     on the highest level with at least dims + 1 results, as BOHB does;
//   - diverged trials are the worst result at every level; failed ones say nothing;
//   - trials still running with no result at that level count as bad
//     (the constant liar), so groups asking at once get different proposals;
//   - the random stream of trial t's proposal depends on (seed, t) only.
// So a proposal is a function of the seed, the trial's number and the results
// and running trials at that moment: a resumed sweep, rebuilt from its study
// (restore, rung, end), proposes what an uninterrupted one would have, given
// the same arrival order. A warm-start study adds its trials' results as
// older observations.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "sweep/space.h"
#include "sweep/study.h"
#include "sweep/tpe.h"

namespace rs {

class Search {
 public:
  Search(const SweepConfig& s, const std::string& base_text);

  // Trial `trial` starts a job: its values (proposed now if it is a TPE trial
  // seen for the first time); it counts as running until end().
  const Overrides& start(int64_t trial);
  // Its values; the trial must have started or been restored.
  const Overrides& params(int64_t trial) const;
  // A trial's values from an earlier run of the sweep (its study row or checkpoint).
  void restore(int64_t trial, const Overrides& values);
  // Validation accuracy after `epoch` epochs (an ASHA rung).
  void rung(int64_t trial, int64_t epoch, double val_accuracy);
  // A job of the trial ended (interrupted jobs too: then with no result).
  void end(int64_t trial, std::optional<TrialStatus> status, double best_val_accuracy);
  // The finished trials of an earlier study of the same space seed the model;
  // its keys must be this space's (exit 2 naming the key otherwise). A value
  // outside this space counts as unknown for its key; returns how many of the
  // old trials have one.
  int64_t warm_start(const Study& old, const std::string& path);

  // Trials with a result (warm-start ones included): TPE's start-up counts these.
  size_t observed() const;

 private:
  struct Observed {
    std::map<int64_t, double> at;  // level -> validation accuracy (kComplete: best, when completed)
    bool diverged = false;
    std::vector<std::optional<double>> x;  // coordinates in the space
  };
  static constexpr int64_t kComplete = INT64_MAX;
  Observed& entry(int64_t trial);  // its observation record, made on first use
  std::vector<std::optional<double>> coordinates(const Overrides& values) const;
  Overrides propose(int64_t trial) const;

  SweepConfig m_sweep;
  Overrides m_config_values;              // the config's own value of each key it sets (the default trial)
  std::map<int64_t, Overrides> m_values;  // trials started or restored
  std::map<int64_t, Observed> m_obs;      // trials with results; warm-start ones have ids < 0
  std::set<int64_t> m_running;
};

}  // namespace rs
