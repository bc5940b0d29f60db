// Gradient summing over a communicator, bucketed and overlapped with the
// backward pass: the flat gradient buffer is cut into buckets of whole
// tensors (from the end, where backward starts); a bucket's allreduce starts
// as soon as the layers it covers have finished backward, and finish() waits
// for the rest before the optimizer step. MPI (host memory) on the CPU
// backend, NCCL on its own stream on the CUDA backend. With one rank every
// call returns at once.
//
// A GradComm is made once per rank group (with its device context) and reused
// by every model the group trains: on CUDA ranks it owns the NCCL communicator
// and its stream. It binds to one model's buffer at a time (make()).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "mpi/comm.h"

namespace rs {

struct Bucket {
  size_t offset, count;  // floats within the flat gradient buffer
  size_t first_layer;    // lowest layer index with a tensor in it
};

class GradAllreduce {
 public:
  virtual ~GradAllreduce() = default;
  // Before backward: no bucket is in flight.
  virtual void begin() = 0;
  // Backward has finished layer `layer` (layers finish last to first).
  virtual void layer_done(size_t layer) = 0;
  // Waits until every bucket is summed; returns the seconds spent waiting.
  virtual double finish() = 0;
};

// Also sums batch statistics (StatSum): blocking on CPU ranks, queued in
// order on the compute stream's timeline on CUDA ranks.
class GradComm : public StatSum {
 public:
  // Sums `grads` (backend memory) over the group, bucket by bucket (buckets
  // ordered from the end of the buffer). mpi_overlap: on CPU ranks,
  // nonblocking per-bucket allreduce during backward (else blocking, after
  // backward); NCCL always overlaps.
  virtual std::unique_ptr<GradAllreduce> make(float* grads, std::vector<Bucket> buckets, bool mpi_overlap) = 0;
};

// The group's gradient communicator for ranks computing on `be` (which must
// outlive it).
std::unique_ptr<GradComm> make_grad_comm(Backend& be, const Comm& group);

}  // namespace rs
