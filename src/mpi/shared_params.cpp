#include "mpi/shared_params.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>

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
  int node_size = 0, one_node = 0;
  local_rank(group.raw(), &node_size);
  const int mine = node_size == group.size();
  MPI_Allreduce(&mine, &one_node, 1, MPI_INT, MPI_MIN, group.raw());
  if (!one_node) return nullptr;

  std::unique_ptr<SharedParams> s(new SharedParams(group));
  s->m_rank = group.rank();
  s->m_ranks = group.size();
  s->m_n = n;
  s->m_stride = (n + 15) / 16 * 16;
  // parameters | state buffers | each rank's gradients | exchange
  const size_t buffers = size_t(1 + states + s->m_ranks);
  s->m_bytes = (buffers * s->m_stride + (exchange + 15) / 16 * 16) * sizeof(float);
  if (s->m_ranks == 1) {  // one rank: the same layout in private memory, for the split's update in backward
    s->m_map = mmap(nullptr, s->m_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->m_map == MAP_FAILED) {
      s->m_map = nullptr;
      return nullptr;
    }
    s->carve(states);
    return s;
  }
  std::string name, why;
  if (group.leader()) name = create_segment(s->m_bytes, &why);
  group.bcast_string(name);
  int mapped = 0, all_mapped = 0;
  if (!name.empty()) {
    s->m_map = map_segment(name, s->m_bytes);
    if (!s->m_map) why = fmt::format("mmap: {}", std::strerror(errno));
    mapped = s->m_map != nullptr;
  }
  MPI_Allreduce(&mapped, &all_mapped, 1, MPI_INT, MPI_MIN, group.raw());
  if (group.leader() && !name.empty()) shm_unlink(name.c_str());  // every rank has it mapped (or gave up)
  if (!all_mapped) {
    if (group.leader())
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
}

void SharedParams::sync() const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  MPI_Barrier(m_comm.raw());
  std::atomic_thread_fence(std::memory_order_seq_cst);
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
}

void SharedParams::reduce_shard(const std::function<void(const float* g, size_t lo, size_t count)>& update) const {
  const float* const* G = m_grads.get();
  const auto& chunks = m_chunks;
#pragma omp parallel
  {
    alignas(64) float sum[kChunk];
#pragma omp for schedule(static)
    for (size_t c = 0; c < chunks.size(); ++c) {
      const auto [lo, hi] = chunks[c];
      const size_t count = hi - lo;
      if (m_ranks == 1) {  // nothing to sum
        update(G[0] + lo, lo, count);
        continue;
      }
      std::copy_n(G[0] + lo, count, sum);
      for (int q = 1; q < m_ranks; ++q) {
        const float* g = G[q] + lo;
#pragma omp simd
        for (size_t i = 0; i < count; ++i) sum[i] += g[i];
      }
      update(sum, lo, count);
    }
  }
}

}  // namespace rs
