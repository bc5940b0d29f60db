// The sweep's coordinator: a message loop on its own thread of world rank 0,
// on the sweep's own communicators, so no training step waits for it. It
// answers the group leaders (rank 0's own group included, by the same
// messages), keeps the sweep's one clock (every job's start and end are
// stamped here) and asks the SchedulePolicy what runs next. Finished jobs are
// appended to the study's journal (and get their progress line) as soon as
// no message is waiting, so a group's next job is never held up by the file;
// study.h5 is rewritten from memory at most every max(1 s, 20 x its last
// write's time) (at most 5% of the coordinator's time, whatever the study's
// size) and at the end. Rows are found by id through an index, and the best
// row is kept as results arrive: a result costs the same at trial 10 and
// trial 100000.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "sweep/journal.h"
#include "sweep/policy.h"
#include "sweep/search.h"
#include "sweep/shared.h"
#include "sweep/space.h"
#include "sweep/study.h"
#include "train/stop.h"

namespace rs {

class Coordinator {
 public:
  // `previous`: the study of an earlier run of this sweep (resume), or empty;
  // its sweep_seconds start the clock (the time budget counts every run).
  // `warm`: the study named by sweep.warm_start (checked), or empty.
  // `deadline`: no job starts that cannot reach its first checkpoint before it.
  // `link`: how it hears and answers the leaders (msg::MpiLink in a sweep).
  // `read_curves`: a finished trial's curves from its run file (the default
  // reads DIR/trials/<id>/run.h5; the benchmark makes them up).
  using ReadCurves = std::function<std::map<std::string, std::vector<double>>(int64_t trial, const std::string& run)>;
  // `shared`: this job's part of a study several jobs drive (sweep/shared.h);
  // its own results go to shared->study_dir(), trials claimed elsewhere are
  // passed over, and the merged DIR/study.h5 is written when every trial has
  // a result.
  Coordinator(const SweepConfig& sweep, Study previous, const Study& warm, std::string dir, std::string base_text,
              int groups, int world_size, msg::Link& link, const Deadline& deadline, ReadCurves read_curves = {},
              SharedStudy* shared = nullptr);

  // Serves requests, rungs and results until every group has been told the
  // sweep is done. Sleeps between polls: a waiting coordinator takes no core.
  void run();

  // The sweep's clock: seconds over all its runs.
  double elapsed() const { return m_offset + since_start(); }
  // True when the sweep stopped early (a signal, the deadline) with work left; why, for people.
  bool incomplete() const { return m_incomplete; }
  const std::string& stop_reason() const { return m_stop_reason; }
  const Study& study() const { return m_study; }
  int64_t total() const { return m_policy.total(); }
  size_t resumed() const { return m_resumed; }
  const std::vector<int64_t>& skipped() const { return m_policy.options().skip; }

 private:
  using Clock = std::chrono::steady_clock;
  void serve(const msg::FromLeader& m);
  void reply(int leader);  // the next job for the group of `leader`, or remember it as waiting
  void result(const msg::Result& m);
  void write_finished();  // curves of the jobs finished since the last write, study.h5, progress lines
  void record_rungs(int64_t trial, int64_t epochs);  // from the trial's curves, to the policy and the search
  void restore_checkpointed();                       // values of trials interrupted before their first result
  std::string run_path(int64_t trial) const;         // DIR/trials/<trial>/run.h5
  void restore_values(int64_t trial);                // a TPE trial's values, from its checkpoint if it has one
  // A shared study, every 0.25 s at most: the other jobs' results into the search (TPE proposes from every
  // job's results) and, with ASHA, their rung results and where each trial stands into the policy.
  void sync_foreign();
  // The stage of a job a shared study claims: its ASHA promotion's epochs, or 0 for a trial's first job.
  int64_t stage(const Job& j) const { return m_sweep.asha && j.stop_epoch > m_sweep.min_epochs ? j.stop_epoch : 0; }
  TrialRow* row(int64_t trial);
  void note_best(size_t i);  // row i changed: keep m_best
  void compact();            // study.h5 from memory; the journal starts afresh
  void print_progress(const TrialRow& r, double wall_seconds) const;
  void begin_stop(const std::string& why);  // Stop to every running job's leader; no new work
  bool fits(const Job& j) const;            // the job's first epoch ends before the deadline
  void note_epoch_seconds(int64_t trial);   // its mean epoch time, from its curves
  const std::vector<double>* curve(int64_t trial, const char* metric) const;  // null if not recorded
  void reply_waiting();                                                       // answer every group told to wait, again
  // A shared study's next job once this job's policy has none or says wait:
  // a trial's stage taken over from a dead job; else wait (trials run
  // elsewhere, or the policy said so); else done (false).
  bool shared_next(SchedulePolicy::Decision* d);
  void shared_end();  // every trial has a result: the merged DIR/study.h5
  double since_start() const { return std::chrono::duration<double>(Clock::now() - m_t0).count(); }

  SweepConfig m_sweep;
  Study m_study;
  std::unordered_map<int64_t, size_t> m_row_of;  // trial -> its row in m_study
  int m_best = -1;                               // best_row(m_study), kept as rows change
  Journal m_journal;
  double m_compacted_at = 0, m_compact_seconds = 0;  // since_start() of the last compaction, its duration
  std::string m_dir, m_study_path;                   // the sweep's directory (trials/), this coordinator's study
  SharedStudy* m_shared = nullptr;
  Clock::time_point m_shared_at;                         // the last look at the other jobs
  Clock::time_point m_synced_at;                         // the last sync_foreign()
  std::unordered_map<int64_t, int64_t> m_foreign_reach;  // trial -> the furthest reach() sync_foreign() applied
  int m_groups, m_world;
  msg::Link& m_link;
  ReadCurves m_read_curves;
  Clock::time_point m_unwritten_since;  // the oldest unwritten result's arrival
  Clock::time_point m_heard_at;         // the last message from a leader
  SchedulePolicy m_policy;
  Search m_search;
  size_t m_resumed = 0;
  int m_groups_done = 0;
  std::vector<int> m_waiting;                           // leaders told nothing yet
  std::map<int64_t, double> m_started_at;               // running trial -> sweep time its job was handed out
  std::vector<std::pair<int64_t, double>> m_unwritten;  // finished jobs (trial, wall seconds) not in study.h5 yet
  std::map<int64_t, int> m_leader_of;                   // running trial -> leader rank
  std::map<int, int64_t> m_stops_sent;                  // leader -> Stop messages sent to it
  std::map<int64_t, double> m_epoch_seconds;            // trial -> mean seconds per epoch (from its curves)
  double m_slowest_epoch = 0;                           // the largest of them so far
  Deadline m_deadline;
  bool m_stopping = false, m_incomplete = false;
  std::string m_stop_reason;
  double m_offset = 0;  // seconds of earlier runs of the sweep
  Clock::time_point m_t0;
};

}  // namespace rs
