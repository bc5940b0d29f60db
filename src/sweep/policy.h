// Which job a rank group runs next: the order of new trials, ASHA rungs and
// promotions, and the time budget. Pure: no MPI, no files, no clock of its
// own (the caller passes the sweep's time), so it is tested with scripted
// arrivals.
//
// ASHA (asynchronous successive halving, Li et al. 2020): every trial but the
// default stops at the first rung (min_epochs) and is `pruned`. When a group
// asks for work, the policy first looks for a promotion: from the highest
// rung down, a trial among the top floor(n / reduction) of the n results at
// that rung (ties: the earlier arrival) that is paused there resumes from its
// checkpoint and trains to the next rung (min_epochs * reduction^k; past the
// last rung, to its full epochs). Only then does a new trial start. While
// running trials may still earn promotions, a group with nothing to do waits.
// The default trial (0) is the baseline: it runs its full budget in one job,
// and its results at each rung count.
//
// Cost: a rung keeps its results ordered (best first, ties by arrival) in a
// tree that knows each entry's rank, and the trials paused there in the same
// order; a promotion is the first paused trial whose rank is within the top
// floor(n / reduction): O(log n) per decision, whatever the study's size.
//
// Walltime: the caller may pass `fits`, which says whether a job can reach
// its first checkpoint (the end of its first epoch) before the deadline; a
// promotion that does not fit is passed over, and no new trial starts once
// one does not fit (the sweep is then out of time: Decision::out_of_time).
#pragma once

#include <cstdint>
#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sweep/protocol.h"

namespace rs {

class SchedulePolicy {
 public:
  struct Options {
    int64_t trials = 0;         // trial ids 0 .. trials - 1
    std::vector<int64_t> skip;  // ids never run (grid points equal to the default)
    bool asha = false;
    int64_t min_epochs = 1, reduction = 3;
    double time_budget = 0;  // seconds of sweep time after which nothing starts (0: none)
  };
  enum class Action { run, wait, done };
  struct Decision {
    Action action = Action::done;
    Job job;
    bool out_of_time = false;  // done because work that is left does not fit before the deadline
  };
  using Fits = std::function<bool(const Job&)>;

  explicit SchedulePolicy(Options o);

  // A trial recorded by an earlier run of the sweep (resume), or by another
  // job of a shared study, stands at `epochs` with `status` (no longer
  // running); its rung results come through rung().
  void restore(int64_t trial, TrialStatus status, int64_t epochs);
  // The trial runs a job the policy did not hand out (a shared study's take-over).
  void take(int64_t trial);
  // A trial's validation accuracy after `epoch` epochs, at a rung (repeats ignored).
  void rung(int64_t trial, int64_t epoch, double val_accuracy);
  // The next job for a group asking at sweep time `now` (seconds).
  Decision next(double now, const Fits& fits = {});
  // A job ended: the trial now stands at `epochs` with `status`. (A job
  // handed out but run by another job of a shared study stays running until
  // restore() says where that job left it.)
  void finished(int64_t trial, TrialStatus status, int64_t epochs);

  // Trials the sweep runs (skipped ids excluded).
  int64_t total() const { return m_opt.trials - int64_t(m_opt.skip.size()); }
  size_t running() const { return m_running.size(); }
  const Options& options() const { return m_opt; }

 private:
  Decision start(Job j);
  // Puts the trial's rung entries in or out of their rungs' paused sets.
  void refresh(int64_t trial);

  struct State {
    TrialStatus status;
    int64_t epochs;
  };
  // A result at a rung: better first (-val), then the earlier arrival.
  struct Key {
    double neg_val;
    int64_t arrival;
    int64_t trial;
    bool operator<(const Key& o) const { return neg_val != o.neg_val ? neg_val < o.neg_val : arrival < o.arrival; }
  };
  using Ranked = __gnu_pbds::tree<Key, __gnu_pbds::null_type, std::less<Key>, __gnu_pbds::rb_tree_tag,
                                  __gnu_pbds::tree_order_statistics_node_update>;
  struct Rung {
    Ranked results;        // every result at this rung
    std::set<Key> paused;  // those of trials paused here (pruned at or a little past it, not running)
  };
  Options m_opt;
  int64_t m_next = 0, m_arrivals = 0;
  std::set<int64_t> m_started, m_running;      // started: handed out at least once (or skipped, or restored)
  std::unordered_map<int64_t, State> m_state;  // trials that have ended a job
  std::map<int64_t, Rung> m_rungs;             // epoch -> its results
  std::unordered_map<int64_t, std::vector<std::pair<int64_t, Key>>> m_entries;  // trial -> (epoch, its key there)
};

}  // namespace rs
