// Data-parallel CPU ranks of one node training in one shared-memory window
// (ZeRO-1 without its copies): the parameters and the optimizer state are
// held once per node, each rank's gradients in a segment its peers read.
// After backward every rank sums its 1/R shard of the gradients over the
// group (rank 0's + rank 1's + ..., the same order at any thread count) and
// updates that shard of the parameters and the state; a barrier then makes
// the parameters every rank's again. Per step and rank that is reading the
// group's gradients once for its shard and the optimizer on 1/R of the
// parameters, where an allreduce copies every gradient to and from the
// transport and each rank then updates them all.
//
// A group on several nodes, the same number of ranks on each, keeps one copy
// per node: the node's ranks sum their shard over the node as above, then
// the ranks holding the same shard on every node (one per node) allreduce
// just that shard, and every node applies the same update to its copy (the
// same sums, so the same parameters everywhere). Across nodes that is 1/L of
// the gradients per rank (L ranks a node) where a plain allreduce sends them
// all; the weight-gradient split's activations cross too (gather_samples).
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
  // allocated) unless every node of the group has as many of its ranks and
  // each node's shared memory (/dev/shm) holds the window: else a node's
  // first rank says why on stderr. n parameters, `states` optimizer buffers of n; every value
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
  int nodes() const { return m_nodes; }
  bool node_leader() const { return m_rank == 0; }
  // After the group's rank 0 wrote the parameters and `states` state buffers
  // (resume): every node's copy the same. Collective over the group.
  void copy_from_first_node(int states) const;
  // `rows` holds `width` floats a sample for the step's Bg samples, each rank's
  // slice (the trainer's cut of Bg over the group) written by that rank on its
  // node: after this, every node holds every slice. Collective over the group;
  // sync() before reading a peer's slice.
  void gather_samples(float* rows, size_t width, int Bg) const;
  // [first, last): the values this rank sums and updates, R contiguous ranges cut at 16-value steps
  std::pair<size_t, size_t> shard() const { return {cut(m_rank), cut(m_rank + 1)}; }
  // Ranges [lo, hi) (sorted, disjoint) that each rank updates on its own
  // during backward (the weight-gradient split's rows): reduce_shard skips them.
  void set_updated(const std::vector<std::pair<size_t, size_t>>& ranges);

  // Waits for every rank of this node; what each wrote before is visible to all after.
  void sync() const;
  // update(g, lo, count) over this rank's shard (1/L of the n values, L ranks
  // on the node) in chunks of kChunk (the rank's threads share them), g[i] =
  // the sum over the group's ranks of grads[lo + i]; past the updated ranges.
  // Several nodes: the node's sums are allreduced across nodes first.
  void reduce_shard(const std::function<void(const float* g, size_t lo, size_t count)>& update) const;
  // Seconds this rank spent in the exchange across nodes since the last call:
  // gather_samples, and reduce_shard's allreduce. Zero on one node.
  std::pair<double, double> take_exchange_seconds() const { return {std::exchange(m_gather_s, 0.0), std::exchange(m_reduce_s, 0.0)}; }
  static constexpr size_t kChunk = 16384;  // 64 KB of sums: with the chunk of each rank's gradients, in L2

 private:
  explicit SharedParams(const Comm& group) : m_group(group) {}
  void carve(int states);  // the buffers' places in the mapping
  const Comm& m_group;
  MPI_Comm m_node = MPI_COMM_NULL;   // the group's ranks on this node
  MPI_Comm m_cross = MPI_COMM_NULL;  // one rank a node: those with this rank's index on its node
  int m_nodes = 1;
  std::vector<int> m_cross_group_ranks;  // the group rank of each rank of m_cross
  void* m_map = nullptr;
  size_t m_bytes = 0;
  int m_rank = 0, m_ranks = 0;  // on this node
  size_t m_n = 0, m_stride = 0;  // values, and floats per buffer (a 64-byte multiple)
  float* m_params = nullptr;
  float* m_exchange = nullptr;
  std::vector<std::pair<size_t, size_t>> m_chunks;  // reduce_shard's [lo, hi): kChunk at most, past the updated ranges
  std::vector<size_t> m_chunk_at;                   // several nodes: each chunk's place in m_sums
  mutable double m_gather_s = 0, m_reduce_s = 0;
  mutable std::vector<float> m_sums;                // several nodes: the node's sums of its chunks, then the group's
  size_t cut(int q) const { return q == m_ranks ? m_n : m_n * size_t(q) / size_t(m_ranks) / 16 * 16; }
  std::unique_ptr<float*[]> m_grads;
};

}  // namespace rs
