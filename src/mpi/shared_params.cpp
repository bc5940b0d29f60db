#include "mpi/shared_params.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <span>
#include <string>
#include <sys/mman.h>

#include "io/trace.h"

namespace rs {
namespace {

// Rank 0 creates and sizes the segment (its pages reserved now: a full
// /dev/shm is an error here, not a SIGBUS later); "" and the reason on failure.
std::string create_segment(size_t bytes, std::string* why) {
  static int seq = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string name = fmt::format("/ranksweep.{}.{}", getpid(), seq++);
    const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) {
      *why = fmt::format("shm_open: {}", std::strerror(errno));
      return "";
    }
    int err = ftruncate(fd, off_t(bytes)) == 0 ? 0 : errno;
    if (!err) err = posix_fallocate(fd, 0, off_t(bytes));
    close(fd);
    if (!err) return name;
    shm_unlink(name.c_str());
    *why = fmt::format("{} MB in /dev/shm: {}", bytes >> 20, std::strerror(err));
    return "";
  }
  *why = "no free name in /dev/shm";
  return "";
}

void* map_segment(const std::string& name, size_t bytes) {
  const int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) return nullptr;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

std::unique_ptr<SharedParams> SharedParams::make(const Comm& group, size_t n, int states, size_t exchange) {
  if (n == 0) return nullptr;
  std::unique_ptr<SharedParams> s(new SharedParams(group));
  MPI_Comm_split_type(group.raw(), MPI_COMM_TYPE_SHARED, group.rank(), MPI_INFO_NULL, &s->m_node);
  MPI_Comm_rank(s->m_node, &s->m_rank);
  MPI_Comm_size(s->m_node, &s->m_ranks);
  int sizes[2] = {s->m_ranks, -s->m_ranks};  // min and -max over the group
  MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MIN, group.raw());
  if (sizes[0] != -sizes[1]) return nullptr;  // uneven nodes: shards would not line up
  MPI_Comm_split(group.raw(), s->m_rank, group.rank(), &s->m_cross);
  MPI_Comm_size(s->m_cross, &s->m_nodes);
  if (s->m_nodes > 1) {
    s->m_cross_group_ranks.resize(size_t(s->m_nodes));
    const int me = group.rank();
    MPI_Allgather(&me, 1, MPI_INT, s->m_cross_group_ranks.data(), 1, MPI_INT, s->m_cross);
  }
  s->m_n = n;
  s->m_stride = (n + 15) / 16 * 16;
  // parameters | state buffers | each rank's gradients | exchange
  const size_t buffers = size_t(1 + states + s->m_ranks);
  s->m_bytes = (buffers * s->m_stride + (exchange + 15) / 16 * 16) * sizeof(float);
  const Comm node(s->m_node);
  std::string name, why;
  if (s->m_ranks == 1) {  // one rank on the node: the same layout in private memory, for the split's update in backward
    s->m_map = mmap(nullptr, s->m_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->m_map == MAP_FAILED) {
      s->m_map = nullptr;
      why = fmt::format("{} MB: {}", s->m_bytes >> 20, std::strerror(errno));
    }
  } else {
    if (node.leader()) name = create_segment(s->m_bytes, &why);
    node.bcast_string(name);
    if (!name.empty()) {
      s->m_map = map_segment(name, s->m_bytes);
      if (!s->m_map) why = fmt::format("mmap: {}", std::strerror(errno));
    }
  }
  const int mapped = s->m_map != nullptr;
  int all_mapped = 0;
  MPI_Allreduce(&mapped, &all_mapped, 1, MPI_INT, MPI_MIN, group.raw());
  if (node.leader() && !name.empty()) shm_unlink(name.c_str());  // every rank has it mapped (or gave up)
  if (!all_mapped) {
    int node_mapped = 0;
    MPI_Allreduce(&mapped, &node_mapped, 1, MPI_INT, MPI_MIN, s->m_node);
    if (node.leader() && !node_mapped && group.size() > 1)
      std::fprintf(stderr, "ranksweep: no shared memory for the group's parameters (%s): gradients by allreduce\n",
                   why.empty() ? "a rank could not map it" : why.c_str());
    return nullptr;  // the destructor unmaps
  }
  s->carve(states);
  return s;
}

void SharedParams::carve(int states) {
  float* base = static_cast<float*>(m_map);
  m_params = base;
  m_grads.reset(new float*[size_t(m_ranks)]);
  for (int q = 0; q < m_ranks; ++q) m_grads[size_t(q)] = base + size_t(1 + states + q) * m_stride;
  m_exchange = base + size_t(1 + states + m_ranks) * m_stride;
  set_updated({});
}

SharedParams::~SharedParams() {
  if (m_map) munmap(m_map, m_bytes);
  if (m_cross != MPI_COMM_NULL) MPI_Comm_free(&m_cross);
  if (m_node != MPI_COMM_NULL) MPI_Comm_free(&m_node);
}

void SharedParams::sync() const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (m_ranks > 1) MPI_Barrier(m_node);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void SharedParams::copy_from_first_node(int states) const {
  if (m_nodes > 1 && node_leader()) {  // the leaders' m_cross holds the group's rank 0 as its rank 0
    const Comm leaders(m_cross);
    leaders.bcast(std::span<float>(m_params, size_t(1 + states) * m_stride));
  }
  sync();
}

void SharedParams::gather_samples(float* rows, size_t width, int Bg) const {
  if (m_nodes == 1) return;
  // The slices of the ranks with this rank's node index (one a node), each at its place in the batch.
  const int64_t R = m_group.size();
  std::vector<int> counts(static_cast<size_t>(m_nodes)), at(counts.size());
  for (size_t j = 0; j < counts.size(); ++j) {
    const int64_t r = m_cross_group_ranks[j], lo = Bg * r / R, hi = Bg * (r + 1) / R;
    counts[j] = int((hi - lo) * int64_t(width));
    at[j] = int(lo * int64_t(width));
  }
  const auto c0 = trace::Clock::now();
  MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, rows, counts.data(), at.data(), MPI_FLOAT, m_cross);
  const auto c1 = trace::Clock::now();
  trace::span("exchange (split)", c0, c1, {}, true);  // inside the layer's backward
  m_gather_s += std::chrono::duration<double>(c1 - c0).count();
}

void SharedParams::set_updated(const std::vector<std::pair<size_t, size_t>>& ranges) {
  const auto [first, last] = shard();
  m_chunks.clear();
  auto add = [&](size_t lo, size_t hi) {
    for (; lo < hi; lo += kChunk) m_chunks.push_back({lo, std::min(hi, lo + kChunk)});
  };
  size_t at = first;
  for (const auto& [a, b] : ranges) {
    const size_t lo = std::max(a, first), hi = std::min(b, last);
    if (lo >= hi) continue;
    add(at, lo);
    at = hi;
  }
  add(at, last);
  m_chunk_at.clear();
  if (m_nodes > 1) {
    size_t total = 0;
    for (const auto& [lo, hi] : m_chunks) m_chunk_at.push_back(total), total += hi - lo;
    m_sums.assign(total, 0.f);
  }
}

void SharedParams::reduce_shard(const std::function<void(const float* g, size_t lo, size_t count)>& update) const {
  const float* const* G = m_grads.get();
  const auto& chunks = m_chunks;
  const bool nodes = m_nodes > 1;  // sum into m_sums, allreduce across nodes, then update
  auto node_sum = [&](float* sum, size_t lo, size_t count) {
    std::copy_n(G[0] + lo, count, sum);
    for (int q = 1; q < m_ranks; ++q) {
      const float* g = G[q] + lo;
#pragma omp simd
      for (size_t i = 0; i < count; ++i) sum[i] += g[i];
    }
  };
#pragma omp parallel
  {
    alignas(64) float sum[kChunk];
#pragma omp for schedule(static)
    for (size_t c = 0; c < chunks.size(); ++c) {
      const auto [lo, hi] = chunks[c];
      const size_t count = hi - lo;
      if (nodes) {
        node_sum(m_sums.data() + m_chunk_at[c], lo, count);
      } else if (m_ranks == 1) {  // nothing to sum
        update(G[0] + lo, lo, count);
      } else {
        node_sum(sum, lo, count);
        update(sum, lo, count);
      }
    }
  }
  if (!nodes) return;
  const auto c0 = trace::Clock::now();
  for (size_t at = 0; at < m_sums.size(); at += size_t(1) << 30) {
    const int count = int(std::min(m_sums.size() - at, size_t(1) << 30));
    MPI_Allreduce(MPI_IN_PLACE, m_sums.data() + at, count, MPI_FLOAT, MPI_SUM, m_cross);
  }
  const auto c1 = trace::Clock::now();
  trace::span("exchange (shards across nodes)", c0, c1, {}, true);  // inside the optimizer's span
  m_reduce_s += std::chrono::duration<double>(c1 - c0).count();
#pragma omp parallel for schedule(static)
  for (size_t c = 0; c < chunks.size(); ++c)
    update(m_sums.data() + m_chunk_at[c], chunks[c].first, chunks[c].second - chunks[c].first);
}

}  // namespace rs
