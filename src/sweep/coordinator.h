// The sweep's coordinator: a message loop on its own thread of world rank 0,
// on the sweep's own communicator, so no training step waits for it. It
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
#include "sweep/space.h"
#include "sweep/study.h"

namespace rs {

class Coordinator {
 public:
  // `previous`: the study of an earlier run of this sweep (resume), or empty.
  Coordinator(const SweepConfig& sweep, Study previous, std::string dir, std::string base_text, int groups,
              int world_size, MPI_Comm ctl);

  // Serves requests, rungs and results until every group has been told the
  // sweep is done. Sleeps between polls: a waiting coordinator takes no core.
  void run();

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - m_t0).count(); }
  const Study& study() const { return m_study; }
  int64_t total() const { return m_policy.total(); }
  size_t resumed() const { return m_resumed; }
  const std::vector<int64_t>& skipped() const { return m_skipped; }

 private:
  using Clock = std::chrono::steady_clock;
  void serve(const MPI_Status& st);
  void reply(int leader);  // the next job for the group of `leader`, or remember it as waiting
  void result(const msg::Result& m);
  void write_finished();  // curves of the jobs finished since the last write, study.h5, progress lines
  void record_rungs(int64_t trial, int64_t epochs);  // from the trial's curves
  TrialRow* row(int64_t trial);
  void print_progress(const TrialRow& r, double wall_seconds) const;

  SweepConfig m_sweep;
  Study m_study;
  std::string m_dir;
  int m_groups, m_world;
  MPI_Comm m_ctl;
  std::vector<int64_t> m_skipped;
  SchedulePolicy m_policy;
  size_t m_resumed = 0;
  int m_groups_done = 0;
  std::vector<int> m_waiting;                           // leaders told nothing yet
  std::map<int64_t, double> m_started_at;               // running trial -> sweep time its job was handed out
  std::vector<std::pair<int64_t, double>> m_unwritten;  // finished jobs (trial, wall seconds) not in study.h5 yet
  Clock::time_point m_t0;
};

}  // namespace rs
