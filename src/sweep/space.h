// The [sweep] section: the search space, the search and the scheduler.
//
//   [sweep]
//   method = "grid"          # grid | random | tpe
//   trials = 20              # random, tpe: how many trials (the default and enqueued ones not counted)
//   seed = 1                 # random draws, TPE's proposals
//   warm_start = "runs/old/study.h5"  # tpe: the finished trials of a study of the same keys seed the model
//   time_budget = 0          # seconds; no new trial starts after it (0: none)
//   group_size = 1           # ranks per trial (--group-size overrides)
//   [sweep.space]            # any train.* or model.* key, data.crop_padding, data.flip (ordered by key)
//   "train.lr" = [0.1, 0.01]                                         # grid values / random choice
//   "model.dense" = [256, 1024]
//   "train.momentum" = { distribution = "uniform", low = 0.5, high = 0.99 }
//   "train.weight_decay" = { distribution = "log_uniform", low = 1e-6, high = 1e-3 }
//   "train.batch_size" = { distribution = "int_uniform", low = 32, high = 256 }
//   [[sweep.enqueue]]        # chosen trials, run first (trials 1, 2, ...); keys of sweep.space,
//   "train.lr" = 0.05        # the ones left out keep the config's value
//   [sweep.tpe]              # method = "tpe" (sweep/search.h)
//   startup_trials = 10      # random trials until this many have results
//   candidates = 24          # draws from the good density per key and proposal
//   [sweep.asha]             # asynchronous successive halving (absent: full budget)
//   min_epochs = 1           # first rung
//   reduction = 3            # keep the top 1/reduction at each rung
//
// Trial 0 is always the config's own values (the default trial), then the
// enqueued trials, then the grid, random or TPE ones. Grid and random trials
// are a pure function of (config, index); TPE trials are proposed by the
// coordinator when they start (sweep/search.h), and sent to their group.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/value.h"

namespace rs {

enum class Distribution { values, uniform, log_uniform, int_uniform };

struct Dimension {
  std::string key;  // dotted config key, e.g. "train.lr"
  Distribution kind = Distribution::values;
  std::vector<TomlValue> values;  // kind values: the grid values or choices
  double low = 0, high = 0;       // the others
};

struct TpeOptions {
  int64_t startup_trials = 10;  // trials with results before the model is used (random draws until then)
  int64_t candidates = 24;      // samples drawn from l(x) per key
  double prior_weight = 1.0;
};

struct SweepConfig {
  std::string method = "grid";
  int64_t trials = 10, seed = 1, group_size = 1;
  double time_budget = 0;
  bool asha = false;
  int64_t min_epochs = 1, reduction = 3;
  std::vector<Dimension> space;
  std::vector<Overrides> enqueue;  // [[sweep.enqueue]]: trials 1..E, run right after the default, in space order
  TpeOptions tpe;                  // [sweep.tpe]
  std::string warm_start;          // a study file whose results seed TPE
};

struct TrialSpec {
  int64_t id = 0;
  Overrides params;          // key, typed value, in space order (empty for the default trial)
  std::string text() const;  // "key=value, ..." for people
};

// Parses [sweep] of the TOML text; errors name `origin` and the key path.
SweepConfig parse_sweep(const std::string& text, const std::string& origin);

// Every value a trial may take (each listed value, each range's ends) and
// every enqueued trial, applied to the base config: a key that does not
// exist, a wrong type or an out-of-range value is a UserError here, at the
// start, naming the key and value (not N failed trials). An enqueued trial
// repeating another or the default trial is one too; one with a value
// outside sweep.space runs as given (a grid's off-grid point, say), and the
// returned notes say so, one line each, for the sweep to print.
std::vector<std::string> validate_space(const SweepConfig& s, const std::string& base_text, const std::string& origin);

// Number of trials including the default trial 0.
int64_t trial_count(const SweepConfig& s);
TrialSpec make_trial(const SweepConfig& s, int64_t id);

// True if every value of the trial equals the config's own (the grid point
// of the default trial: the sweep skips it rather than train trial 0 twice).
bool same_as_default(const TrialSpec& t, const std::string& config_text);

// Rung epochs of ASHA for a run of max_epochs: min_epochs * reduction^k < max_epochs.
std::vector<int64_t> asha_rungs(const SweepConfig& s, int64_t max_epochs);
// The (rung epoch, validation accuracy) results a trial's per-epoch
// validation curve holds, for rungs up to `epochs` epochs.
std::vector<std::pair<int64_t, double>> rung_results(const SweepConfig& s, const std::vector<double>& val,
                                                     int64_t epochs);

}  // namespace rs
