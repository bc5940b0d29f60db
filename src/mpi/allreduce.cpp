#include "mpi/allreduce.h"

#include <chrono>
#include <stdexcept>

#include "build_info.h"

namespace rs {
namespace {

class NoAllreduce final : public GradAllreduce {
 public:
  void begin() override {}
  void layer_done(size_t) override {}
  double finish() override { return 0; }
};

// MPI on host memory. overlap: MPI_Iallreduce per bucket as soon as it is
// ready, with MPI_Testall after each layer to let the library progress.
// Otherwise one blocking MPI_Allreduce per bucket in finish(): on CPU ranks
// that own every core there is nobody to progress a nonblocking reduction
// (docs/performance.md, "Why the thresholds").
class MpiAllreduce final : public GradAllreduce {
 public:
  MpiAllreduce(float* grads, std::vector<Bucket> buckets, const Comm& comm, bool overlap)
      : m_grads(grads), m_buckets(std::move(buckets)), m_comm(comm), m_overlap(overlap) {}

  void begin() override {
    m_next = 0;
    m_requests.clear();
  }
  void layer_done(size_t layer) override {
    if (!m_overlap) return;
    // buckets are ordered from the end of the buffer: start every one whose layers are all done
    while (m_next < m_buckets.size() && m_buckets[m_next].first_layer >= layer) start(m_buckets[m_next++]);
    if (!m_requests.empty()) {
      int flag = 0;
      MPI_Testall(int(m_requests.size()), m_requests.data(), &flag, MPI_STATUSES_IGNORE);
    }
  }
  double finish() override {
    const auto t0 = std::chrono::steady_clock::now();
    if (m_overlap) {
      layer_done(0);
      MPI_Waitall(int(m_requests.size()), m_requests.data(), MPI_STATUSES_IGNORE);
    } else {
      for (const Bucket& b : m_buckets)
        MPI_Allreduce(MPI_IN_PLACE, m_grads + b.offset, int(b.count), MPI_FLOAT, MPI_SUM, m_comm.raw());
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  void start(const Bucket& b) {
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, m_grads + b.offset, int(b.count), MPI_FLOAT, MPI_SUM, m_comm.raw(), &r);
    m_requests.push_back(r);
  }

  float* m_grads;
  std::vector<Bucket> m_buckets;
  const Comm& m_comm;
  bool m_overlap;
  size_t m_next = 0;
  std::vector<MPI_Request> m_requests;
};

class MpiGradComm final : public GradComm {
 public:
  explicit MpiGradComm(const Comm& group) : m_group(group) {}
  std::unique_ptr<GradAllreduce> make(float* grads, std::vector<Bucket> buckets, bool mpi_overlap) override {
    if (m_group.size() == 1) return std::make_unique<NoAllreduce>();
    return std::make_unique<MpiAllreduce>(grads, std::move(buckets), m_group, mpi_overlap);
  }
  void sum(double* x, size_t n) override {
    if (m_group.size() > 1) MPI_Allreduce(MPI_IN_PLACE, x, int(n), MPI_DOUBLE, MPI_SUM, m_group.raw());
  }

 private:
  const Comm& m_group;
};

}  // namespace

#if RS_HAVE_CUDA
std::unique_ptr<GradComm> make_nccl_grad_comm(Backend& be, const Comm& group);
#endif

std::unique_ptr<GradComm> make_grad_comm(Backend& be, const Comm& group) {
  if (be.kind() == BackendKind::cpu || group.size() == 1) return std::make_unique<MpiGradComm>(group);
#if RS_HAVE_CUDA
  return make_nccl_grad_comm(be, group);
#else
  throw std::logic_error("no gradient communicator for backend " + be.name());
#endif
}

}  // namespace rs
