// Gradient buckets summed with NCCL on its own stream, ordered against the
// backend's compute stream with events: a bucket starts when backward has
// produced it, and the optimizer (on the compute stream) waits for the last
// one on the device, not on the host. The ncclUniqueId travels over the
// group's MPI communicator, so any sub-communicator works. The communicator
// and its stream live as long as the group's GradComm (one per group, reused
// by every model the group trains).
//
// On an error path (destroyed while an exception unwinds) nothing waits for
// the NCCL stream and the communicator is aborted, not destroyed: a peer may
// be gone, and a collective waiting for it would never finish.
#include <cuda_runtime.h>
#include <nccl.h>

#include <exception>

#include "kernels/cuda_check.h"
#include "mpi/allreduce.h"

namespace rs {
namespace {

class NcclAllreduce final : public GradAllreduce {
 public:
  NcclAllreduce(float* grads, std::vector<Bucket> buckets, ncclComm_t nccl, cudaStream_t stream, cudaStream_t compute)
      : m_grads(grads), m_buckets(std::move(buckets)), m_nccl(nccl), m_stream(stream), m_compute(compute) {
    m_ready.resize(m_buckets.size());
    for (cudaEvent_t& e : m_ready) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&m_done, cudaEventDisableTiming));
  }
  ~NcclAllreduce() override {
    if (std::uncaught_exceptions() == m_exceptions) CUDA_CHECK_NOTHROW(cudaStreamSynchronize(m_stream));
    for (cudaEvent_t e : m_ready) CUDA_CHECK_NOTHROW(cudaEventDestroy(e));
    CUDA_CHECK_NOTHROW(cudaEventDestroy(m_done));
  }

  void begin() override { m_next = 0; }
  void layer_done(size_t layer) override {
    while (m_next < m_buckets.size() && m_buckets[m_next].first_layer >= layer) {
      const Bucket& b = m_buckets[m_next];
      CUDA_CHECK(cudaEventRecord(m_ready[m_next], m_compute));
      CUDA_CHECK(cudaStreamWaitEvent(m_stream, m_ready[m_next]));
      float* g = m_grads + b.offset;
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
  float* m_grads;
  std::vector<Bucket> m_buckets;
  ncclComm_t m_nccl;
  cudaStream_t m_stream, m_compute;
  std::vector<cudaEvent_t> m_ready;
  cudaEvent_t m_done = nullptr;
  size_t m_next = 0;
  int m_exceptions = std::uncaught_exceptions();
};

class NcclGradComm final : public GradComm {
 public:
  NcclGradComm(Backend& be, const Comm& group) : m_compute(static_cast<cudaStream_t>(be.native_stream())) {
    ncclUniqueId id{};
    if (group.leader()) NCCL_CHECK(ncclGetUniqueId(&id));
    group.bcast(id);
    NCCL_CHECK(ncclCommInitRank(&m_nccl, group.size(), id, group.rank()));
    CUDA_CHECK(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&m_ready, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&m_summed, cudaEventDisableTiming));
  }
  ~NcclGradComm() override {
    const bool unwinding = std::uncaught_exceptions() > m_exceptions;
    if (unwinding)
      NCCL_CHECK_NOTHROW(ncclCommAbort(m_nccl));  // ends its kernels still waiting for peers
    else
      CUDA_CHECK_NOTHROW(cudaStreamSynchronize(m_stream));
    CUDA_CHECK_NOTHROW(cudaEventDestroy(m_ready));
    CUDA_CHECK_NOTHROW(cudaEventDestroy(m_summed));
    CUDA_CHECK_NOTHROW(cudaStreamDestroy(m_stream));
    if (!unwinding) NCCL_CHECK_NOTHROW(ncclCommDestroy(m_nccl));
  }
  std::unique_ptr<GradAllreduce> make(float* grads, std::vector<Bucket> buckets, bool) override {
    return std::make_unique<NcclAllreduce>(grads, std::move(buckets), m_nccl, m_stream, m_compute);
  }
  // Batch statistics: on the NCCL stream (one stream for every operation of
  // the communicator, so all ranks run them in the same order), between the
  // compute stream's producer and consumer kernels; the host does not wait.
  void sum(double* x, size_t n) override {
    CUDA_CHECK(cudaEventRecord(m_ready, m_compute));
    CUDA_CHECK(cudaStreamWaitEvent(m_stream, m_ready));
    NCCL_CHECK(ncclAllReduce(x, x, n, ncclDouble, ncclSum, m_nccl, m_stream));
    CUDA_CHECK(cudaEventRecord(m_summed, m_stream));
    CUDA_CHECK(cudaStreamWaitEvent(m_compute, m_summed));
  }

 private:
  ncclComm_t m_nccl = nullptr;
  cudaStream_t m_stream = nullptr, m_compute = nullptr;
  cudaEvent_t m_ready = nullptr, m_summed = nullptr;
  int m_exceptions = std::uncaught_exceptions();
};

}  // namespace

std::unique_ptr<GradComm> make_nccl_grad_comm(Backend& be, const Comm& group) {
  return std::make_unique<NcclGradComm>(be, group);
}

}  // namespace rs
