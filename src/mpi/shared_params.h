// Data-parallel CPU ranks of one node training in one shared-memory window
// (ZeRO-1 without its copies): the parameters and the optimizer state are
// held once per node, each rank's gradients in a segment its peers read.
// After backward every rank sums its 1/R shard of the gradients over the
// group (rank 0's + rank 1's + ..., the same order at any thread count) and
// updates that shard of the parameters and the state; a barrier then makes
// the parameters every rank's again. Per step and rank that is reading the
// group's gradients once for its shard and the optimizer on 1/R of the
// parameters, where an allreduce copies every gradient to and from the
// transport and each rank then updates them all (the CNN, 3.3M parameters, 2
// ranks: 4.9 -> ~1 ms a step here).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "mpi/comm.h"

namespace rs {

class SharedParams {
 public:
  // Collective over `group` (which must outlive it). Null (nothing
  // allocated) unless all of the group's ranks are on one node and the
  // node's shared memory (/dev/shm) holds the window: else rank 0 says why
  // on stderr. n parameters, `states` optimizer buffers of n; every value
  // starts at zero. POSIX shared memory, mapped by each rank and unmapped on
  // its own: nothing collective when a trainer goes away. A group of one
  // rank gets the same layout in private memory (no /dev/shm): its
  // weight-gradient split then applies the optimizer to dense layers' rows
  // in backward, while they are in cache, and the gradient of those rows
  // never goes to memory.
  // `exchange` more floats, shared by the group as it likes (every rank
  // reads and writes them; the weight-gradient split's activations).
  static std::unique_ptr<SharedParams> make(const Comm& group, size_t n, int states, size_t exchange = 0);
  ~SharedParams();
  SharedParams(const SharedParams&) = delete;
  SharedParams& operator=(const SharedParams&) = delete;

  float* params() const { return m_params; }
  float* state(int k) const { return m_params + size_t(k + 1) * m_stride; }
  float* grads() const { return m_grads[size_t(m_rank)]; }  // this rank's
  float* exchange() const { return m_exchange; }
  // [first, last): the values this rank sums and updates, R contiguous ranges cut at 16-value steps
  std::pair<size_t, size_t> shard() const { return {cut(m_rank), cut(m_rank + 1)}; }
  // Ranges [lo, hi) (sorted, disjoint) that each rank updates on its own
  // during backward (the weight-gradient split's rows): reduce_shard skips them.
  void set_updated(const std::vector<std::pair<size_t, size_t>>& ranges);

  // Waits for every rank of the group; what each wrote before is visible to all after.
  void sync() const;
  // update(g, lo, count) over this rank's shard (1/R of the n values) in
  // chunks of kChunk (the rank's threads share them), g[i] = the sum over
  // ranks of grads[lo + i]; past the updated ranges.
  void reduce_shard(const std::function<void(const float* g, size_t lo, size_t count)>& update) const;
  static constexpr size_t kChunk = 16384;  // 64 KB of sums: with the chunk of each rank's gradients, in L2

 private:
  explicit SharedParams(const Comm& group) : m_comm(group) {}
  void carve(int states);  // the buffers' places in the mapping
  const Comm& m_comm;
  void* m_map = nullptr;
  size_t m_bytes = 0;
  int m_rank = 0, m_ranks = 0;
  size_t m_n = 0, m_stride = 0;  // values, and floats per buffer (a 64-byte multiple)
  float* m_params = nullptr;
  float* m_exchange = nullptr;
  std::vector<std::pair<size_t, size_t>> m_chunks;  // reduce_shard's [lo, hi): kChunk at most, past the updated ranges
  size_t cut(int q) const { return q == m_ranks ? m_n : m_n * size_t(q) / size_t(m_ranks) / 16 * 16; }
  std::unique_ptr<float*[]> m_grads;
};

}  // namespace rs
