#include "dist/allreduce.h"

#include <chrono>
#include <map>
#include <stdexcept>

#include "build_info.h"
#include "error.h"

namespace rs {

std::vector<Bucket> make_buckets(const Model& model, size_t bytes) {
  // layer index of each tensor
  std::map<std::string, size_t> layer_index;
  for (size_t i = 0; i < model.layers().size(); ++i) layer_index[model.layers()[i]->name()] = i;
  std::vector<Bucket> out;
  const auto& info = model.param_info();
  for (size_t t = info.size(); t-- > 0;) {
    const ParamInfo& pi = info[t];
    if (out.empty() || out.back().count * sizeof(float) >= bytes)
      out.push_back(Bucket{pi.offset + pi.count, 0, 0});  // a new bucket ends where this tensor ends
    Bucket& b = out.back();
    const size_t end = b.offset + b.count;
    b.offset = pi.offset;
    b.count = end - pi.offset;
    b.first_layer = layer_index.at(pi.layer);
  }
  return out;
}

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
// that own every core there is nobody to progress a nonblocking reduction,
// and Open MPI 4.1's blocking allreduce of the CNN's 13 MB took 4.4 ms here
// against 10.1 ms for the nonblocking one (/tmp microbenchmark, 2 ranks).
class MpiAllreduce final : public GradAllreduce {
 public:
  MpiAllreduce(Model& model, const Comm& comm, size_t bucket_bytes, bool overlap)
      : m_model(model), m_comm(comm), m_buckets(make_buckets(model, bucket_bytes)), m_overlap(overlap) {}

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
      if (MPI_Waitall(int(m_requests.size()), m_requests.data(), MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        throw std::runtime_error("MPI_Waitall on gradient buckets failed");
    } else {
      for (const Bucket& b : m_buckets)
        if (MPI_Allreduce(MPI_IN_PLACE, m_model.grads() + b.offset, int(b.count), MPI_FLOAT, MPI_SUM,
                          m_comm.raw()) != MPI_SUCCESS)
          throw std::runtime_error("MPI_Allreduce of gradients failed");
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  void start(const Bucket& b) {
    MPI_Request r;
    if (MPI_Iallreduce(MPI_IN_PLACE, m_model.grads() + b.offset, int(b.count), MPI_FLOAT, MPI_SUM, m_comm.raw(), &r) !=
        MPI_SUCCESS)
      throw std::runtime_error("MPI_Iallreduce failed");
    m_requests.push_back(r);
  }

  Model& m_model;
  const Comm& m_comm;
  std::vector<Bucket> m_buckets;
  bool m_overlap;
  size_t m_next = 0;
  std::vector<MPI_Request> m_requests;
};

}  // namespace

#if RS_HAVE_CUDA
std::unique_ptr<GradAllreduce> make_nccl_allreduce(Model& model, const Comm& comm, size_t bucket_bytes);
#endif

std::unique_ptr<GradAllreduce> make_grad_allreduce(Model& model, const Comm& comm, size_t bucket_bytes,
                                                   bool mpi_overlap) {
  if (comm.size() == 1) return std::make_unique<NoAllreduce>();
  if (model.backend().name() == "cpu") return std::make_unique<MpiAllreduce>(model, comm, bucket_bytes, mpi_overlap);
#if RS_HAVE_CUDA
  return make_nccl_allreduce(model, comm, bucket_bytes);
#else
  throw std::logic_error("no allreduce for backend " + model.backend().name());
#endif
}

}  // namespace rs
