// The sweep's coordinator: a message loop on its own thread of world rank 0,
// on the sweep's own communicators, so no training step waits for it. It
// answers the group leaders (rank 0's own group included, by the same
// messages), keeps the sweep's one clock (every job's start and end are
// stamped here) and asks the SchedulePolicy what runs next. Finished jobs are
// written to study.h5 (and get their progress line) as soon as no message is
// waiting, so a group's next job is never held up by the file.
#pragma once

#include <mpi.h>

#include <chrono>
#include <string>
#include <vector>

#include "sweep/policy.h"
#include "sweep/search.h"
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
  Coordinator(const SweepConfig& sweep, Study previous, const Study& warm, std::string dir, std::string base_text,
              int groups, int world_size, Channels ch, const Deadline& deadline);

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
  void serve(const MPI_Status& st);
  void reply(int leader);  // the next job for the group of `leader`, or remember it as waiting
  void result(const msg::Result& m);
  void write_finished();  // curves of the jobs finished since the last write, study.h5, progress lines
  void record_rungs(int64_t trial, int64_t epochs);  // from the trial's curves, to the policy and the search
  void restore_checkpointed();                       // values of trials interrupted before their first result
  TrialRow* row(int64_t trial);
  void print_progress(const TrialRow& r, double wall_seconds) const;
  void begin_stop(const std::string& why);  // Stop to every running job's leader; no new work
  bool fits(const Job& j) const;            // the job's first epoch ends before the deadline
  void note_epoch_seconds(int64_t trial);   // its mean epoch time, from its curves
  const std::vector<double>* curve(int64_t trial, const char* metric) const;  // null if not recorded
  void reply_waiting();                                                       // answer every group told to wait, again
  double since_start() const { return std::chrono::duration<double>(Clock::now() - m_t0).count(); }

  SweepConfig m_sweep;
  Study m_study;
  std::string m_dir;
  int m_groups, m_world;
  Channels m_ch;
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
  Deadline m_deadline;
  bool m_stopping = false, m_incomplete = false;
  std::string m_stop_reason;
  double m_offset = 0;  // seconds of earlier runs of the sweep
  Clock::time_point m_t0;
};

}  // namespace rs
