// Gradient averaging over a communicator, bucketed and overlapped with the
// backward pass: the flat gradient buffer is cut into buckets of whole
// tensors (from the end, where backward starts); a bucket's allreduce starts
// as soon as the layers it covers have finished backward, and finish() waits
// for the rest before the optimizer step. MPI (host memory) on the CPU
// backend, NCCL on its own stream on the CUDA backend. With one rank every
// call returns at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "dist/comm.h"
#include "nn/model.h"

namespace rs {

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

struct Bucket {
  size_t offset, count;  // floats within the flat gradient buffer
  size_t first_layer;    // lowest layer index with a tensor in it
};

// Buckets of at least `bytes` (whole tensors), from the end of the buffer.
std::vector<Bucket> make_buckets(const Model& model, size_t bytes);

// mpi_overlap: on the CPU backend, nonblocking per-bucket MPI allreduce
// overlapped with backward (else blocking, after backward). NCCL always overlaps.
std::unique_ptr<GradAllreduce> make_grad_allreduce(Model& model, const Comm& comm, size_t bucket_bytes,
                                                   bool mpi_overlap);

}  // namespace rs
