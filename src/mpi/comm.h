// MPI, kept out of the math. A Comm is any communicator (the world, or a
// rank group); with one rank every call is a cheap no-op, so the training
// loop calls them unconditionally. Counts are elements, never bytes.
//
// MPI errors: we keep MPI's default handler, MPI_ERRORS_ARE_FATAL, on every
// communicator: a failing call aborts the job with the library's own message
// naming the call, so return codes are never checked (a check could not fire).
// The program runs with MPI_THREAD_MULTIPLE (the sweep's coordinator thread).
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

  // A small broadcast / a barrier that waits sleeping, not spinning: for ranks
  // that may wait long (a sweep group between jobs) on cores others compute on.
  template <class T> void bcast_idle(T& x) const { bcast_idle_bytes(&x, sizeof(T)); }
  void barrier_idle() const;

  void allreduce_sum(std::span<float> v) const;
  void allreduce_sum(std::span<double> v) const;

  // Runs fn on rank 0 only. An exception there is rethrown on every rank
  // (with the message, printed by rank 0 alone), so no rank waits in a
  // collective: a WriteError or UserError as such, anything else as an
  // AgreedError.
  void root_only(const std::function<void()>& fn) const;
  // Runs fn on every rank. If any rank throws, every rank throws the message
  // of the lowest such rank (UserError or AgreedError, as root_only): a
  // collective way to fail on what only some ranks do (their own slice of a
  // file, their own allocations).
  void agree(const std::function<void()>& fn) const;

 private:
  void bcast_bytes(void* p, size_t bytes) const;
  void bcast_idle_bytes(void* p, size_t bytes) const;  // bytes < 2^31
  MPI_Comm m_comm;
  int m_rank = 0, m_size = 1;
};

// Ends every rank of the job: "ranksweep: rank R: fatal: <message>" on stderr,
// then MPI_Abort (status 1). For failures the ranks cannot agree on.
[[noreturn]] void abort_job(const std::string& message);

// Waits for a request, sleeping 1 ms between tests.
void wait_idle(MPI_Request& r);

// Ranks sharing this node, and this rank's index among them.
int local_rank(MPI_Comm c, int* local_size);

}  // namespace rs
