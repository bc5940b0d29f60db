// MPI, kept out of the math. A Comm is any communicator (the world, or a
// rank group later); with one rank every call is a cheap no-op, so the
// training loop calls them unconditionally. Counts are elements, never bytes.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace rs {

class Comm {
 public:
  explicit Comm(MPI_Comm c = MPI_COMM_WORLD);
  int rank() const { return m_rank; }
  int size() const { return m_size; }
  bool leader() const { return m_rank == 0; }
  MPI_Comm raw() const { return m_comm; }

  // Broadcast from rank 0, in chunks so any size works (counts > 2^31).
  template <class T> void bcast(std::span<T> v) const { bcast_bytes(v.data(), v.size_bytes()); }
  template <class T> void bcast(T& x) const { bcast_bytes(&x, sizeof(T)); }
  // Resizes on non-root ranks to the root's size, then broadcasts.
  template <class T> void bcast_vector(std::vector<T>& v) const {
    uint64_t n = v.size();
    bcast(n);
    v.resize(n);
    bcast(std::span<T>(v));
  }
  void bcast_string(std::string& s) const;

  void allreduce_sum(std::span<float> v) const;
  void allreduce_sum(std::span<double> v) const;

  // Runs fn on rank 0 only. A UserError there is rethrown on every rank (with
  // the message, printed by rank 0 alone), so no rank waits in a collective.
  void root_only(const std::function<void()>& fn) const;
  // Runs fn on every rank. If any rank throws a UserError, every rank throws
  // the message of the lowest such rank: a collective way to fail on input
  // only some ranks read (their own slice of a file).
  void agree(const std::function<void()>& fn) const;

 private:
  void bcast_bytes(void* p, size_t bytes) const;
  MPI_Comm m_comm;
  int m_rank = 0, m_size = 1;
};

// Ranks sharing this node, and this rank's index among them.
int local_rank(MPI_Comm c, int* local_size);

}  // namespace rs
