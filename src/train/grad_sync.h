// How a training step's gradients become the group's update: one strategy,
// chosen once from the group's layout (make_grad_sync) and called by the
// trainer at the same three points of every step, whatever it is:
//   - "allreduce": every rank's gradients summed by a bucketed allreduce
//     (MPI, or NCCL on GPU ranks), then every rank updates every parameter;
//   - "shared": CPU ranks hold the parameters and the optimizer state once a
//     node (SharedParams); each rank sums and updates its shard, on several
//     nodes after an allreduce of that shard across the nodes;
//   - "shared + split": as shared, and large dense layers' weight gradients
//     are split by rows (DenseSplit), applied during backward; on several
//     nodes their activations cross the network instead of their gradients.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "mpi/allreduce.h"
#include "mpi/shared_params.h"
#include "nn/model.h"
#include "nn/optimizer.h"
#include "train/weight_split.h"

namespace rs {

struct SyncTimes {
  double exchange = 0;                  // waiting for and exchanging with the other ranks
  double optimizer = 0;                 // summing this rank's part and applying the optimizer
  double exchanged_in_backward = 0;     // of `exchange`, the part spent inside backward (the split's)
};

class GradSync {
 public:
  virtual ~GradSync() = default;
  // Before the step's forward pass, with its learning rate.
  virtual void begin(float lr) = 0;
  // Backward has finished layer `layer` (layers finish last to first).
  virtual void layer_done(size_t layer) = 0;
  // After backward: the group's gradients summed and applied to this rank's parameters.
  virtual SyncTimes finish(float lr) = 0;
  // The split the layers' backward passes call (null: none).
  virtual WeightGradSplit* split() const { return nullptr; }
  // The node's one copy of the parameters (null: each rank holds its own).
  virtual const SharedParams* shared() const { return nullptr; }
  // One line for the log: the strategy and why.
  virtual std::string describe() const = 0;
};

// The strategy for `model` and `opt` on `be` over `comm` (collective: call
// from init or resume, where every rank is). `grads` sums over `comm` for the
// allreduce strategy.
std::unique_ptr<GradSync> make_grad_sync(const TrainConfig& t, Backend& be, GradComm& grads, const Comm& comm,
                                         Model& model, Optimizer& opt);

}  // namespace rs
