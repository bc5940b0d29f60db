// The sweep's decisions without MPI or training: the schedule (policy.h) and
// the search (search.h) rebuilt from a study, and a simulated sweep whose
// trials are scored by a function, for tests and benchmarks of the search.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "sweep/policy.h"
#include "sweep/search.h"
#include "sweep/study.h"

namespace rs {

// Replays a study's rows (resume), in their order (the order results first
// arrived): each trial's values, its rung results from its validation
// curve, and its end. Rows' values are typed as the space holds them.
void replay_study(Study& s, const SweepConfig& sweep, SchedulePolicy& policy, Search& search);
// A row's rung results, from its validation curve in `s`, to the policy and the search.
void replay_rungs(const Study& s, const TrialRow& r, const SweepConfig& sweep, SchedulePolicy& policy, Search& search);

// The policy's options for a sweep: every trial id, the grid points equal to the default skipped.
SchedulePolicy::Options schedule_options(const SweepConfig& sweep, const std::string& base_text);

// A trial's validation accuracy after `epoch` epochs, from its values (the
// config's values with the trial's on top).
using Objective = std::function<double(const Overrides& values, int64_t epoch)>;

struct Simulation {
  std::vector<std::pair<int64_t, Overrides>> started;  // trials in the order they first started, with their values
  Study study;                                         // rows in order of first result; curves: val_accuracy
};

// A sweep of `groups` groups whose trials train `epochs` epochs (ASHA as
// configured); a job of group g takes (1 + g / 4) time units per epoch, so
// results arrive in a fixed, interleaved order. Stops after `max_results`
// job results (jobs still running are dropped); `previous` resumes one.
Simulation simulate_sweep(const SweepConfig& sweep, const std::string& base_text, int groups, int64_t epochs,
                          const Objective& f, size_t max_results = std::numeric_limits<size_t>::max(),
                          Study previous = {});

}  // namespace rs
