// The sweep's scheduling policy on its own: no MPI, no files, scripted
// arrivals. A decision is written "run trial@stop" (stop 0 with full budget).
#include <catch2/catch.hpp>

#include "sweep/policy.h"

using namespace rs;
using Action = SchedulePolicy::Action;

namespace {

SchedulePolicy::Options asha(int64_t trials, int64_t min_epochs = 1, int64_t reduction = 2) {
  SchedulePolicy::Options o;
  o.trials = trials, o.asha = true, o.min_epochs = min_epochs, o.reduction = reduction;
  return o;
}

// Expects a job: trial `id` to `stop` epochs (0: its full budget).
void expect_run(SchedulePolicy& p, int64_t id, int64_t stop, double now = 0) {
  const auto d = p.next(now);
  INFO("expected trial " << id << " to " << stop);
  REQUIRE(d.action == Action::run);
  CHECK(d.job.trial == id);
  CHECK(d.job.full_budget == (stop == 0));
  if (stop) CHECK(d.job.stop_epoch == stop);
}

// A trial's job ends at `epochs` and passed the rungs it reached with `val`.
void arrive(SchedulePolicy& p, int64_t id, int64_t epochs, double val, TrialStatus s = TrialStatus::pruned) {
  for (int64_t e = 1; e <= epochs; e *= 2) p.rung(id, e, val);  // rungs 1, 2, 4, ... (min 1, reduction 2)
  p.finished(id, s, epochs);
}

}  // namespace

TEST_CASE("policy without ASHA: trials in order, skipped ids never run, then done", "[policy]") {
  SchedulePolicy::Options o;
  o.trials = 5, o.skip = {2};
  SchedulePolicy p(o);
  CHECK(p.total() == 4);
  for (int64_t id : {0, 1, 3, 4}) expect_run(p, id, 0);
  CHECK(p.running() == 4);
  CHECK(p.next(0).action == Action::done);  // nothing can be promoted: no need to wait
  p.finished(1, TrialStatus::completed, 3);
  CHECK(p.running() == 3);
  CHECK(p.next(0).action == Action::done);
}

TEST_CASE("policy with ASHA: new trials stop at the first rung, the default runs its budget", "[policy]") {
  SchedulePolicy p(asha(4, 2, 3));
  expect_run(p, 0, 0);
  expect_run(p, 1, 2);
  expect_run(p, 2, 2);
  expect_run(p, 3, 2);
  CHECK(p.next(0).action == Action::wait);  // running trials may still earn promotions
}

TEST_CASE("policy: a waiting group gets the promotion once results arrive", "[policy]") {
  SchedulePolicy p(asha(3));
  expect_run(p, 0, 0);
  expect_run(p, 1, 1);
  expect_run(p, 2, 1);
  CHECK(p.next(0).action == Action::wait);
  arrive(p, 1, 1, 0.5);
  CHECK(p.next(0).action == Action::wait);  // one result at rung 1: top floor(1/2) = none
  arrive(p, 2, 1, 0.7);
  expect_run(p, 2, 2);                      // top 1 of {1: 0.5, 2: 0.7}
  CHECK(p.next(0).action == Action::wait);  // trial 0 and trial 2 still run
  p.finished(2, TrialStatus::pruned, 2);
  p.rung(2, 2, 0.8);
  p.finished(0, TrialStatus::completed, 4);
  CHECK(p.next(0).action == Action::done);  // rung 2 has one result: nothing more to promote
}

TEST_CASE("policy: ties at a rung go to the earlier arrival", "[policy]") {
  SchedulePolicy p(asha(5));
  for (int64_t id = 0; id < 5; ++id) p.next(0);
  arrive(p, 3, 1, 0.6);
  arrive(p, 1, 1, 0.6);
  arrive(p, 2, 1, 0.6);
  arrive(p, 4, 1, 0.6);
  expect_run(p, 3, 2);  // top 2 of four equal results: 3 and 1, in arrival order
  expect_run(p, 1, 2);
  CHECK(p.next(0).action == Action::wait);
}

TEST_CASE("policy: promotions from the highest rung first", "[policy]") {
  SchedulePolicy p(asha(9));
  for (int64_t id = 0; id < 9; ++id) p.next(0);  // 0 runs its budget; 1..8 to rung 1
  for (int64_t id = 1; id <= 4; ++id) arrive(p, id, 1, 0.1 * double(id));
  expect_run(p, 4, 2);  // top 2 of 1..4 at rung 1: 4, 3
  expect_run(p, 3, 2);
  p.rung(4, 2, 0.9);
  p.finished(4, TrialStatus::pruned, 2);
  p.rung(3, 2, 0.8);
  p.finished(3, TrialStatus::pruned, 2);
  for (int64_t id = 5; id <= 8; ++id) arrive(p, id, 1, 0.1 * double(id));  // rung 1 now 8 results: top 4 = 8 7 6 5
  expect_run(p, 4, 4);  // rung 2 (two results, top 1 = trial 4) before rung 1
  expect_run(p, 8, 2);
  expect_run(p, 7, 2);
  expect_run(p, 6, 2);
  expect_run(p, 5, 2);
  CHECK(p.next(0).action == Action::wait);
}

TEST_CASE("policy: resume from recorded rungs promotes as the uninterrupted sweep would", "[policy]") {
  SchedulePolicy p(asha(5));
  // An earlier run recorded trials 0..3; trial 2 had been promoted to rung 2 already.
  p.restore(0, TrialStatus::completed, 4);
  p.restore(1, TrialStatus::pruned, 1);
  p.restore(2, TrialStatus::pruned, 2);
  p.restore(3, TrialStatus::pruned, 1);
  for (auto [id, val] : {std::pair{0, 0.5}, {1, 0.7}, {2, 0.9}, {3, 0.1}}) p.rung(id, 1, val);
  p.rung(0, 2, 0.6);
  p.rung(2, 2, 0.95);
  p.rung(0, 4, 0.65);
  // rung 2: {0: 0.6, 2: 0.95}: top 1 = trial 2, paused at 2 -> to 4; rung 1: top 2 = 2 (done), 1 -> to 2
  expect_run(p, 2, 4);
  expect_run(p, 1, 2);
  expect_run(p, 4, 1);  // then the one trial never started; restored trials are not run again
  CHECK(p.next(0).action == Action::wait);
  p.rung(1, 1, 0.7);  // a restarted job passing a rung again does not count twice
  arrive(p, 4, 1, 0.2);
  p.finished(2, TrialStatus::completed, 4);
  p.finished(1, TrialStatus::pruned, 2);
  CHECK(p.next(0).action == Action::done);
}

TEST_CASE("policy: nothing starts after the time budget, promotions included", "[policy]") {
  SchedulePolicy::Options o = asha(4);
  o.time_budget = 10;
  SchedulePolicy p(o);
  expect_run(p, 0, 0, 1);
  expect_run(p, 1, 1, 2);
  expect_run(p, 2, 1, 9.5);
  arrive(p, 1, 1, 0.5);
  arrive(p, 2, 1, 0.9);
  CHECK(p.next(10.5).action == Action::done);  // trial 2 would be promoted, trial 3 never started
  CHECK(p.next(10.5).action == Action::done);
  CHECK(p.running() == 1);  // the default still runs to its end
}

TEST_CASE("policy: nothing starts that cannot reach a checkpoint before the deadline", "[policy]") {
  SchedulePolicy p(asha(6));
  for (int64_t id = 0; id < 5; ++id) p.next(0);  // 0 full budget; 1..4 to rung 1
  for (int64_t id = 1; id <= 4; ++id) arrive(p, id, 1, 0.1 * double(id));
  // promotions: 4 then 3 (top 2 of 4). Trial 4 is slow (its epochs do not fit), 3 fits; new trial 5 does not.
  const auto fits = [](const Job& j) { return j.trial == 3; };
  const auto d = p.next(0, fits);
  REQUIRE(d.action == Action::run);
  CHECK(d.job.trial == 3);  // trial 4 passed over, not started
  CHECK(d.job.stop_epoch == 2);
  const auto e = p.next(0, fits);
  CHECK(e.action == Action::done);  // trial 5 would not fit: the sweep is out of time
  CHECK(e.out_of_time);
  // without the deadline trial 4's promotion and trial 5 would run
  expect_run(p, 4, 2);
  expect_run(p, 5, 1);
}

// A shared study: a job handed out here but claimed by another job stays
// running here (so a group waits for what its result may earn) until
// restore() says where that job left the trial; take() marks a job run here
// that the policy did not hand out (a take-over).
TEST_CASE("policy: trials run by other jobs of a shared study", "[policy]") {
  SchedulePolicy p(asha(4));
  expect_run(p, 0, 0);
  expect_run(p, 1, 1);  // claimed elsewhere: stays running
  p.finished(0, TrialStatus::completed, 4);
  p.rung(0, 1, 0.5);
  expect_run(p, 2, 1);
  p.take(3);  // trial 3's first job, taken over from a dead job
  CHECK(p.running() == 3);
  CHECK(p.next(0).action == Action::wait);
  p.rung(1, 1, 0.9);  // the other job's result for trial 1, read from its study
  p.restore(1, TrialStatus::pruned, 1);
  CHECK(p.running() == 2);
  expect_run(p, 1, 2);                   // top 1 of the 2 results at rung 1: promoted here
  p.restore(1, TrialStatus::pruned, 2);  // ... or, claimed by another job, done there
  CHECK(p.running() == 2);
  arrive(p, 2, 1, 0.1);
  arrive(p, 3, 1, 0.2);
  CHECK(p.next(0).action == Action::done);  // 2 and 3 rank below the top 2 at rung 1; nothing runs anywhere
}
