// DIR/study.h5: one row per finished trial, curves, the best trial's model.
//   /            attrs: format="ranksweep-study", config (base TOML), provenance, best_trial,
//                sweep_seconds (running time over all runs of the sweep)
//   /trials/<column>      equal-length 1-D: id, one column per hyperparameter (float64 when
//                         every value is a number, else strings), status, epochs,
//                         best_val_accuracy, test_accuracy, wall_seconds, group,
//                         start_seconds, end_seconds, message
//   /curves/trial, /curves/<metric>  every trial's per-epoch history as one table, a row per
//                         (trial, epoch): trial id, then each history column (epoch, losses,
//                         accuracies, times); NaN where a trial lacks a column; @metrics lists them.
//                         (Files written before this layout, /curves/<id>/<metric>, are read too.)
//   /best/...             the best trial's run file layout (model, history, config attribute)
// Results are appended to DIR/study.journal as they arrive (sweep/journal.h)
// and study.h5 is rewritten from them now and then (to study.h5.tmp, then
// renamed) and at the end; read_study() combines the two, so a killed sweep
// leaves every trial that finished readable. /journal_seq: the last journal
// record the file holds.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sweep/protocol.h"
#include "sweep/space.h"

namespace rs {

struct TrialRow {
  int64_t id = 0;
  Overrides params;  // as in TrialSpec
  TrialStatus status = TrialStatus::completed;
  int64_t epochs = 0;
  double best_val_accuracy = 0, test_accuracy = 0;
  double wall_seconds = 0;                    // all its jobs, each measured by its group
  double start_seconds = 0, end_seconds = 0;  // its latest job, on the sweep's clock (the coordinator's)
  int64_t group = 0;
  std::string message;
  std::string run_path;  // DIR/trials/<id>/run.h5 (empty if none)
};

// A trial that failed because its output could not be written (a full disk:
// WriteError) is marked by this start of its message; a resumed sweep runs
// it again instead of keeping the failure.
inline constexpr const char* kWriteFailed = "write failed: ";
inline bool retry_on_resume(const TrialRow& r) {
  return r.status == TrialStatus::failed && r.message.rfind(kWriteFailed, 0) == 0;
}

struct Study {
  std::string config_text;
  double sweep_seconds = 0;       // the sweep's running time, summed over its runs (resumes)
  int64_t journal_seq = 0;        // the last journal record applied
  std::vector<std::string> keys;  // hyperparameter keys, in space order
  std::vector<TrialRow> rows;
  std::map<int64_t, std::map<std::string, std::vector<double>>> curves;
};

// Both take the HDF5 lock (io/h5.h): the sweep's coordinator thread writes
// while rank 0's training thread checkpoints.
void write_study(const std::string& path, const Study& s, int world_size);
// DIR/study.h5 with what DIR/study.journal adds to it (either may be missing, not both).
Study read_study(const std::string& path);
// A study at `path`: the file, or its journal alone (a sweep killed before its first compaction).
bool study_exists(const std::string& path);

// Index of the best row (highest best_val_accuracy among completed/pruned), -1 if none.
int best_row(const Study& s);

}  // namespace rs
