#include "train/grad_sync.h"

#include <fmt/format.h>
#include <mpi.h>

#include <chrono>
#include <map>

#include "io/trace.h"

namespace rs {
namespace {

// Seconds fn takes; a step-level span of the trace.
template <class F> double timed(const char* span, F&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  const auto t1 = std::chrono::steady_clock::now();
  trace::span(span, t0, t1, {}, true);
  return std::chrono::duration<double>(t1 - t0).count();
}

constexpr size_t kBucketBytes = size_t(4) << 20;

// Buckets of at least `bytes` (whole tensors), from the end of the buffer.
std::vector<Bucket> make_buckets(const Model& model, size_t bytes) {
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

class AllreduceSync final : public GradSync {
 public:
  AllreduceSync(const TrainConfig& t, GradComm& grads, const Comm& comm, Model& model, Optimizer& opt, std::string why)
      : m_why(std::move(why)),
        m_ranks(comm.size()),
        m_overlap(t.allreduce_overlap),
        m_model(model),
        m_opt(opt),
        m_allreduce(grads.make(model.grads(), make_buckets(model, kBucketBytes), t.allreduce_overlap)) {}
  void begin(float) override { m_allreduce->begin(); }
  void layer_done(size_t layer) override { m_allreduce->layer_done(layer); }
  SyncTimes finish(float lr) override {
    SyncTimes s;
    s.exchange = timed("exchange", [&] { m_allreduce->finish(); });
    s.optimizer = timed("optimizer", [&] { m_opt.step(m_model.params(), m_model.grads(), lr); });
    return s;
  }
  std::string describe() const override {
    return m_ranks == 1
               ? "gradients: one rank, its own update"
               : fmt::format("gradients: bucketed allreduce over {} ranks{}, every rank updates every parameter ({})",
                             m_ranks, m_overlap ? " (overlapped with backward)" : "", m_why);
  }

 private:
  std::string m_why;
  int m_ranks;
  bool m_overlap;
  Model& m_model;
  Optimizer& m_opt;
  std::unique_ptr<GradAllreduce> m_allreduce;
};

class SharedSync final : public GradSync {
 public:
  SharedSync(std::unique_ptr<SharedParams> shared, std::unique_ptr<DenseSplit> split, int ranks, Model& model,
             Optimizer& opt)
      : m_shared(std::move(shared)), m_split(std::move(split)), m_ranks(ranks), m_model(model), m_opt(opt) {}
  void begin(float lr) override {
    m_opt.begin_step();  // the split applies its rows during backward
    if (m_split)
      m_split->set_update(
          [this, lr](const float* g, size_t at, size_t count) { m_opt.update(m_model.params(), g, lr, at, count); });
  }
  void layer_done(size_t) override {}
  SyncTimes finish(float lr) override {
    // wait for the node's gradients, update the rest of this rank's shard, wait for the others'
    SyncTimes s;
    s.exchange = timed("exchange", [&] { m_shared->sync(); });
    s.optimizer = timed("optimizer", [&] {
      m_shared->reduce_shard(
          [&](const float* g, size_t lo, size_t count) { m_opt.update(m_model.params(), g, lr, lo, count); });
    });
    s.exchange += timed("exchange", [&] { m_shared->sync(); });
    const auto [gather, reduce] = m_shared->take_exchange_seconds();  // across nodes: exchange, not compute
    s.optimizer -= reduce;
    s.exchange += gather + reduce;
    s.exchanged_in_backward = gather;
    return s;
  }
  WeightGradSplit* split() const override { return m_split.get(); }
  const SharedParams* shared() const override { return m_shared.get(); }
  std::string describe() const override {
    const int nodes = m_shared->nodes();
    std::string s = m_ranks == 1 ? "gradients: one rank, updated in place"
                                 : fmt::format(
                                       "gradients: one parameter copy a node ({} node(s) x {} rank(s)), each rank "
                                       "sums and updates its shard{}",
                                       nodes, m_ranks / nodes, nodes > 1 ? ", shards allreduced across nodes" : "");
    if (m_split)
      s += fmt::format("; {} dense layer(s) split by rows{}", m_split->layers(),
                       nodes > 1 ? ", their activations exchanged across nodes" : "");
    return s;
  }

 private:
  std::unique_ptr<SharedParams> m_shared;
  std::unique_ptr<DenseSplit> m_split;
  int m_ranks;
  Model& m_model;
  Optimizer& m_opt;
};

}  // namespace

std::unique_ptr<GradSync> make_grad_sync(const TrainConfig& t, Backend& be, GradComm& grads, const Comm& comm,
                                         Model& model, Optimizer& opt) {
  std::string why = !t.shard_optimizer ? "train.shard_optimizer = false" : "GPU ranks";
  if (t.shard_optimizer && be.kind() == BackendKind::cpu) {
    why = "nodes with different numbers of ranks, or no shared memory";
    const int states = int(opt.state_names().size()), batch = int(t.batch_size);
    auto shared = SharedParams::make(comm, model.num_params(), states, DenseSplit::exchange_floats(model, batch));
    if (shared) {
      model.use_storage(shared->params(), shared->grads());
      auto split = DenseSplit::make(model, *shared, batch, t.exchange_activations);
      std::vector<float*> state;
      for (int k = 0; k < states; ++k) state.push_back(shared->state(k));
      opt.use_storage(state);
      return std::make_unique<SharedSync>(std::move(shared), std::move(split), comm.size(), model, opt);
    }
  }
  return std::make_unique<AllreduceSync>(t, grads, comm, model, opt, why);
}

}  // namespace rs
