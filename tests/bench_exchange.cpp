// Exchange costs between ranks, for the scaling projection (jobs/scaling-projection.sh):
// MPI_Allreduce (float sum) and MPI_Allgather of float buffers from 1 KB to
// 16 MB over MPI_COMM_WORLD, the median of several timed repetitions after a
// warm-up. Rank 0 prints one line per operation and size:
//   allreduce BYTES SECONDS
//   allgather BYTES SECONDS   (BYTES: the whole gathered buffer)
// Run it across emulated nodes with tests/cluster.sh --hosts n1:1,n2:1.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace {

template <class F> double median_seconds(MPI_Comm c, int reps, F&& op) {
  op();  // warm-up (connections, buffers)
  std::vector<double> t;
  for (int k = 0; k < reps; ++k) {
    MPI_Barrier(c);
    const double t0 = MPI_Wtime();
    op();
    double dt = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, c);  // the slowest rank's
    t.push_back(dt);
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[size_t(reps / 2)];
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (size_t bytes = size_t(1) << 10; bytes <= size_t(16) << 20; bytes *= 4) {
    const size_t n = bytes / sizeof(float), part = n / size_t(size);
    std::vector<float> buf(n, 1.f);
    const int reps = bytes >= (size_t(4) << 20) ? 15 : 41;
    const double ar = median_seconds(MPI_COMM_WORLD, reps, [&] {
      MPI_Allreduce(MPI_IN_PLACE, buf.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
    const double ag = median_seconds(MPI_COMM_WORLD, reps, [&] {
      MPI_Allgather(MPI_IN_PLACE, 0, MPI_FLOAT, buf.data(), int(part), MPI_FLOAT, MPI_COMM_WORLD);
    });
    if (rank == 0) std::printf("allreduce %zu %.9f\nallgather %zu %.9f\n", bytes, ar, part * size * sizeof(float), ag);
  }
  MPI_Finalize();
  return 0;
}
