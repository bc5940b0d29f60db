// One study driven by several independent `ranksweep sweep --shared` jobs
// (a Slurm job array, or jobs submitted at different times) on one
// directory. Each job keeps its own study (DIR/shared/jobs/<job>/study.h5
// and its journal: one writer a file, so no lock is needed for results);
// the jobs agree on who runs what through files that are only ever created,
// never rewritten in place, which cluster file systems (NFSv3+, Lustre,
// GPFS) make atomic without flock or fcntl locks:
//
//   DIR/shared/config.toml        the sweep's config, created once by link(2)
//                                 (a job with another config exits 2)
//   DIR/shared/claims/<trial>[@e][.n]  created with O_CREAT | O_EXCL by
//                                 the job that runs the trial (@e: its ASHA
//                                 promotion to e epochs; n-th take-over: .n)
//   DIR/shared/jobs/<job>/alive   a counter the job rewrites (rename) every
//                                 timeout / 4 seconds; "done" when it ends
//   DIR/shared/jobs/<job>/started its start (Unix seconds), for the merged
//                                 study's timeline only
//
// A job is dead to another when its counter has not changed for `timeout`
// seconds of the observer's own clock (no clocks are compared across nodes)
// or it says "done". A claimed trial without a result whose owner is dead is
// taken over by the first job to create its next claim file: it resumes the
// trial from its checkpoint (DIR/trials/<id>/run.h5, shared by all jobs).
// Every job, when it ends, writes the merged DIR/study.h5 with the results
// all jobs have then (unless the file already holds as many trials), so the
// last job to end leaves the whole study there.
//
// With ASHA, every job feeds the other jobs' rung results into its own
// scheduling policy (read at most every 0.25 s), so a promotion is decided on
// all results it has read; the promotion is claimed as a stage of its own
// (<trial>@<epochs>), so each runs once, by whichever job claims it first,
// from the shared checkpoint. As within one job, which trials are promoted
// depends on the order results arrive in: an ASHA study shared by several
// jobs is not the same as one job's. Grid and random trials' values are a
// function of their number; a TPE trial is proposed by the job that claims it
// from every job's results it has read (Coordinator::sync_foreign, the same
// 0.25 s reads), and keeps its checkpoint's values when taken over.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sweep/study.h"

namespace rs {

class SharedStudy {
 public:
  // Rank 0: makes DIR/shared/..., checks the config against the study's,
  // names this job (Slurm job and array task, host, pid).
  SharedStudy(std::string dir, const std::string& config_text, const std::string& origin, double timeout);

  const std::string& job() const { return m_job; }
  std::string study_dir() const;  // this job's own study: DIR/shared/jobs/<job>
  double timeout() const { return m_timeout; }

  // Claims a trial's first job (epochs 0) or its ASHA promotion to `epochs`
  // for this job; false if another job has it.
  bool claim(int64_t trial, int64_t epochs = 0);
  // How far a result row has taken its trial: its epochs if pruned (ASHA may
  // promote it further), INT64_MAX if it ended otherwise, -1 if it is no result.
  static int64_t reach(const TrialRow& r);
  // Every job's results (curves included), as one study; a trial promoted by
  // another job than the one that started it: its row that went furthest.
  Study gather(const Study& like) const;
  // Every job's trials, and those of `own` (this job's study in memory, perhaps
  // ahead of its files) -> reach() of their furthest row, without copying rows.
  std::map<int64_t, int64_t> reached(const Study& own) const;
  // Every job's own study (this job's as last written), by job name, read again only when its files changed.
  std::vector<std::pair<std::string, const Study*>> job_studies() const;
  // Claims whose stage has no result in `reached` (trial -> reach() of its
  // furthest row): the first whose owner is dead is taken over (returned;
  // trial -1 if none); `pending` counts those still running elsewhere.
  struct Stage {
    int64_t trial = -1, epochs = 0;  // epochs 0: the trial's first job
  };
  Stage take_over(const std::map<int64_t, int64_t>& reached, size_t* pending);
  // This job is alive (rewritten at most every timeout / 4 seconds), or done.
  void heartbeat();
  void done();

 private:
  using Clock = std::chrono::steady_clock;
  bool alive(const std::string& job);
  // A result of the trial's stage (reach() >= epochs) in that job's own study.
  bool has_result(const std::string& job, int64_t trial, int64_t epochs) const;
  // A job's own study (null if it has none yet), read again only when its files changed.
  const Study* job_study(const std::string& job) const;
  struct Cached {
    std::string stamp;  // sizes and times of study.h5 and study.journal
    Study study;
  };
  mutable std::map<std::string, Cached> m_cache;
  void write_alive(const std::string& text);
  std::string m_dir, m_shared, m_job;
  double m_timeout;
  int64_t m_beats = 0;
  Clock::time_point m_beat_at;
  std::map<std::string, std::pair<std::string, Clock::time_point>> m_seen;  // job -> (its alive file, since when)
};

}  // namespace rs
