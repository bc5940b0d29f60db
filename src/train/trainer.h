// Synchronous data-parallel training of one model over a communicator.
// Every rank holds the whole dataset and the same shuffled order; each global
// batch is cut into contiguous per-rank slices; the loss is scaled by 1/global
// batch, so the sum of the ranks' gradients is the mean. How they are summed
// and applied is the GradSync strategy chosen from the layout (allreduce, or
// for CPU ranks one parameter copy a node, each rank updating its shard).
// With one rank this is plain training. A sweep's rank group makes one
// backend and one GradComm and gives them to every Trainer it runs.
#pragma once

#include <array>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "data/dataset.h"
#include "train/run_file.h"
#include "mpi/allreduce.h"
#include "mpi/comm.h"
#include "nn/model.h"
#include "nn/optimizer.h"
#include "train/grad_sync.h"
#include "train/history.h"

namespace rs {

struct Diverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  double seconds = 0;
  int64_t samples = 0;
};

class Trainer {
 public:
  // Gradients summed over `comm` through `grads` (made for `be` and `comm`).
  Trainer(const Config& cfg, const Data& data, Backend& be, GradComm& grads, const Comm& comm);
  // A run of its own: makes its own GradComm.
  Trainer(const Config& cfg, const Data& data, Backend& be, const Comm& comm);

  // Fresh parameters from the seed, initialised on rank 0 and broadcast (or
  // written by rank 0 to the node's shared copy). Collective.
  void init();
  // Parameters, optimizer state and history from a run file (read on rank 0).
  // Collective.
  void resume(const RunFile& rf);

  // One epoch of training then evaluation on validation and test sets;
  // appends a row to history() and returns true. Throws Diverged on a
  // non-finite loss. Returns false when every rank agreed to stop inside the
  // epoch (see set_stop_check): position() then says where, for a checkpoint
  // from which resume() continues with the losses an uninterrupted run has.
  bool run_epoch();
  // How run_epochs ended.
  enum class Ended { done, stopped_in_epoch, stopped_after_epoch };
  // The loop of `train` and of every sweep trial: epochs until epochs_done()
  // is `last`. After each epoch, and where a stop ends one early,
  // checkpoint() (collective; rank 0 writes the run file from position());
  // after each whole epoch, then, epoch_done(). A stop agreed between epochs
  // ends the loop before the next. Diverged propagates.
  Ended run_epochs(int64_t last, const std::function<void()>& checkpoint, const std::function<void()>& epoch_done);
  // Every rank's `check` is polled at every step and evaluation batch; when
  // any rank's says stop, all ranks stop at the same boundary (one small
  // allreduce per poll with more than one rank). Collective.
  void set_stop_check(std::function<bool()> check) { m_stop_check = std::move(check); }
  // Whether any rank's check says stop now. Collective (false without a check).
  bool stop_agreed();
  // Where run_epoch stopped (step 0 after a finished epoch); sums on rank 0 only.
  const EpochPosition& position() const { return m_position; }

  int64_t epochs_done() const { return int64_t(m_history.epochs()); }
  int64_t steps_per_epoch() const;
  const History& history() const { return m_history; }
  Model& model() { return m_model; }
  const Optimizer& optimizer() const { return m_opt; }
  const Data& data() const { return m_data; }
  // Whether the parameters are the node's one copy (SharedParams), not
  // allreduced: decided by the first init() or resume().
  bool shares_params() const { return m_sync && m_sync->shared(); }
  bool splits_weight_grads() const { return m_sync && m_sync->split(); }
  // The gradient strategy in one line (after init() or resume()).
  std::string exchange_description() const { return m_sync ? m_sync->describe() : ""; }
  // Time spent broadcasting the data before this trainer existed, to report.
  void note_broadcast(double seconds) { m_broadcast_seconds += seconds; }

 private:
  Trainer(const Config& cfg, const Data& data, Backend& be, std::unique_ptr<GradComm> own, const Comm& comm);
  const Config& m_cfg;
  const Data& m_data;
  Backend& m_be;
  const Comm& m_comm;
  GradComm& m_grads;                      // gradients and batch statistics summed over m_comm
  std::unique_ptr<GradComm> m_own_grads;  // when no GradComm was given
  Model m_model;
  Optimizer m_opt;
  // How gradients are summed and applied, chosen from the layout by the
  // first init() or resume(), which are collective: the constructor is not
  // (a sweep agrees on its failures, e.g. one rank's allocation).
  std::unique_ptr<GradSync> m_sync;
  void choose_sync();
  History m_history;
  Buffer<float> m_dlogits;
  Buffer<int32_t> m_labels;  // (max_batch) in backend memory
  Buffer<double> m_metrics;  // loss sum, correct count; read back once per epoch/pass
  std::vector<int64_t> m_test_idx;
  std::function<bool()> m_stop_check;
  EpochPosition m_position;               // where the last run_epoch stopped, or where resume() starts
  std::array<double, 2> m_resume_sums{};  // this rank's partial sums at m_position (resume)
  using Phases = std::array<double, 6>;  // seconds: data, forward, backward, allreduce, optimizer, other
  // run_epoch's steps from first_step on; false if the ranks agreed to stop inside them.
  bool train_steps(int64_t epoch, int64_t first_step, double seconds_before, Phases& phase);
  // The epoch's row of history.
  void record_epoch(int64_t epoch, std::array<double, 2> sums, double train_seconds, const EvalResult& val,
                    const EvalResult& test, const Phases& phase);
  // Evaluation of idx on d; false if the ranks agreed to stop first.
  bool evaluate(const Dataset& d, const std::vector<int64_t>& idx, EvalResult* out);
  // Stops inside the epoch: this rank's partial sums to rank 0, position recorded.
  void stop_inside_epoch(int64_t step, double train_seconds, std::array<double, 2> mine);
  double m_broadcast_seconds = 0;  // model broadcast (and data, via note_broadcast), reported once
  // metrics -> host; zeroes them when reset is set
  std::array<double, 2> read_metrics(bool reset);
};

}  // namespace rs
