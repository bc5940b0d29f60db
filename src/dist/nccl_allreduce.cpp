// Gradient buckets summed with NCCL on its own stream, ordered against the
// backend's compute stream with events: a bucket starts when backward has
// produced it, and the optimizer (on the compute stream) waits for the last
// one on the device, not on the host. The ncclUniqueId travels over the
// group's MPI communicator, so any sub-communicator works.
#include <cuda_runtime.h>
#include <nccl.h>

#include "dist/allreduce.h"
#include "kernels/cuda_check.h"

namespace rs {
namespace {

class NcclAllreduce final : public GradAllreduce {
 public:
  NcclAllreduce(Model& model, const Comm& comm, size_t bucket_bytes)
      : m_model(model), m_buckets(make_buckets(model, bucket_bytes)) {
    m_compute = static_cast<cudaStream_t>(model.backend().native_stream());
    ncclUniqueId id{};
    if (comm.leader()) NCCL_CHECK(ncclGetUniqueId(&id));
    comm.bcast(id);
    NCCL_CHECK(ncclCommInitRank(&m_nccl, comm.size(), id, comm.rank()));
    CUDA_CHECK(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking));
    m_ready.resize(m_buckets.size());
    for (cudaEvent_t& e : m_ready) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&m_done, cudaEventDisableTiming));
  }
  ~NcclAllreduce() override {
    CUDA_CHECK_NOTHROW(cudaStreamSynchronize(m_stream));
    for (cudaEvent_t e : m_ready) CUDA_CHECK_NOTHROW(cudaEventDestroy(e));
    CUDA_CHECK_NOTHROW(cudaEventDestroy(m_done));
    CUDA_CHECK_NOTHROW(cudaStreamDestroy(m_stream));
    NCCL_CHECK_NOTHROW(ncclCommDestroy(m_nccl));
  }

  void begin() override { m_next = 0; }
  void layer_done(size_t layer) override {
    while (m_next < m_buckets.size() && m_buckets[m_next].first_layer >= layer) {
      const Bucket& b = m_buckets[m_next];
      CUDA_CHECK(cudaEventRecord(m_ready[m_next], m_compute));
      CUDA_CHECK(cudaStreamWaitEvent(m_stream, m_ready[m_next]));
      float* g = m_model.grads() + b.offset;
      NCCL_CHECK(ncclAllReduce(g, g, b.count, ncclFloat, ncclSum, m_nccl, m_stream));
      ++m_next;
    }
  }
  double finish() override {
    layer_done(0);
    CUDA_CHECK(cudaEventRecord(m_done, m_stream));
    CUDA_CHECK(cudaStreamWaitEvent(m_compute, m_done));
    return 0;  // the wait happens on the device
  }

 private:
  Model& m_model;
  std::vector<Bucket> m_buckets;
  ncclComm_t m_nccl = nullptr;
  cudaStream_t m_stream = nullptr, m_compute = nullptr;
  std::vector<cudaEvent_t> m_ready;
  cudaEvent_t m_done = nullptr;
  size_t m_next = 0;
};

}  // namespace

std::unique_ptr<GradAllreduce> make_nccl_allreduce(Model& model, const Comm& comm, size_t bucket_bytes) {
  return std::make_unique<NcclAllreduce>(model, comm, bucket_bytes);
}

}  // namespace rs
