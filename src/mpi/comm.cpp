#include "mpi/comm.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <thread>

#include "error.h"

namespace rs {

Comm::Comm(MPI_Comm c) : m_comm(c) {
  MPI_Comm_rank(c, &m_rank);
  MPI_Comm_size(c, &m_size);
}

void Comm::bcast_bytes(void* p, size_t bytes) const {
  if (m_size == 1) return;
  constexpr size_t chunk = size_t(1) << 30;
  auto* b = static_cast<char*>(p);
  for (size_t off = 0; off < bytes; off += chunk)
    MPI_Bcast(b + off, int(std::min(chunk, bytes - off)), MPI_BYTE, 0, m_comm);
}

void Comm::bcast_string(std::string& s) const {
  std::vector<char> v(s.begin(), s.end());
  bcast_vector(v);
  s.assign(v.begin(), v.end());
}

void Comm::allreduce_sum(std::span<float> v) const {
  if (m_size == 1) return;
  constexpr size_t chunk = size_t(std::numeric_limits<int>::max());
  for (size_t off = 0; off < v.size(); off += chunk)
    MPI_Allreduce(MPI_IN_PLACE, v.data() + off, int(std::min(chunk, v.size() - off)), MPI_FLOAT, MPI_SUM, m_comm);
}

void Comm::allreduce_sum(std::span<double> v) const {
  if (m_size == 1) return;
  MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, MPI_SUM, m_comm);
}

namespace {

// What a rank threw, as root_only and agree pass it on: none, bad input, an
// output that could not be written, anything else.
enum Kind : int { kNone = 0, kUser = 1, kOther = 2, kWrite = 3 };

Kind run_caught(const std::function<void()>& fn, std::string& err, bool alone) {
  try {
    fn();
  } catch (const WriteError& e) {
    if (alone) throw;
    err = e.what();
    return kWrite;
  } catch (const UserError& e) {
    if (alone) throw;
    err = e.what();
    return kUser;
  } catch (const std::exception& e) {
    if (alone) throw;
    err = e.what();
    return kOther;
  }
  return kNone;
}

[[noreturn]] void rethrow(int kind, const std::string& err) {
  if (kind == kWrite) throw WriteError(err);
  if (kind == kUser) throw UserError(err);
  throw AgreedError(err);
}

}  // namespace

void Comm::root_only(const std::function<void()>& fn) const {
  std::string err;
  int kind = m_rank == 0 ? run_caught(fn, err, m_size == 1) : kNone;
  bcast(kind);
  if (kind == kNone) return;
  bcast_string(err);
  rethrow(kind, err);
}

void Comm::agree(const std::function<void()>& fn) const {
  std::string err;
  int kind = run_caught(fn, err, m_size == 1);
  int first = kind == kNone ? m_size : m_rank;
  MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, m_comm);
  if (first == m_size) return;
  MPI_Bcast(&kind, 1, MPI_INT, first, m_comm);
  uint64_t n = err.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, first, m_comm);
  err.resize(n);
  MPI_Bcast(err.data(), int(n), MPI_CHAR, first, m_comm);
  rethrow(kind, err);
}

void abort_job(const std::string& message) {
  std::fprintf(stderr, "ranksweep: rank %d: fatal: %s\n", process_rank(), message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return
}

void wait_idle(MPI_Request& r) {
  for (int done = 0;;) {
    MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Comm::barrier_idle() const {
  if (m_size == 1) return;
  MPI_Request r;
  MPI_Ibarrier(m_comm, &r);
  wait_idle(r);
}

void Comm::bcast_idle_bytes(void* p, size_t bytes) const {
  if (m_size == 1) return;
  MPI_Request r;
  MPI_Ibcast(p, int(bytes), MPI_BYTE, 0, m_comm, &r);
  wait_idle(r);
}

int local_rank(MPI_Comm c, int* local_size) {
  MPI_Comm node;
  MPI_Comm_split_type(c, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int r = 0, n = 1;
  MPI_Comm_rank(node, &r);
  MPI_Comm_size(node, &n);
  MPI_Comm_free(&node);
  if (local_size) *local_size = n;
  return r;
}

}  // namespace rs
