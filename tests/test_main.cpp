// Catch2 main for every test binary: MPI is initialised once around the run,
// so tests can use the library's Comm, under mpiexec or alone.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <mpi.h>

int main(int argc, char** argv) {
  int provided = 0;  // as the program: the sweep's coordinator runs on a thread
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  Catch::Session session;
  if (int rc = session.applyCommandLine(argc, argv)) return rc;
  // Only rank 0 reports; every rank runs the same tests.
  if (rank != 0) session.configData().outputFilename = "/dev/null";
  int failed = session.run();
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any ? 1 : 0;
}
