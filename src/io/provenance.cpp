// Provenance attributes: who wrote a file, with what, where and when.
#include "io/provenance.h"

#include <cblas.h>
#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <ctime>

#include "build_info.h"
#include "io/h5.h"

namespace rs {

std::string library_versions() {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  std::string m(mpi, size_t(len));
  m = m.substr(0, m.find_first_of(",\n"));
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
  std::string blas = openblas_get_config();
  while (!blas.empty() && blas.back() == ' ') blas.pop_back();
  return fmt::format("MPI {}; HDF5 {}.{}.{}; OpenBLAS {}; zlib {}", m, maj, min, rel, blas, zlibVersion());
}

void write_provenance(hid_t f, const Provenance& p) {
  h5_attr(f, "/", "version", std::string(RS_VERSION));
  h5_attr(f, "/", "git_sha", std::string(RS_GIT_SHA));
  h5_attr(f, "/", "build", std::string(RS_BUILD_TYPE));
  h5_attr(f, "/", "world_size", int64_t(p.world_size));
  h5_attr(f, "/", "threads_per_rank", int64_t(p.threads));
  h5_attr(f, "/", "libraries", library_versions());
  h5_attr(f, "/", "command", p.command);
  const char* job = std::getenv("SLURM_JOB_ID");
  h5_attr(f, "/", "slurm_job_id", std::string(job ? job : ""));
  const char* restarts = std::getenv("SLURM_RESTART_COUNT");
  h5_attr(f, "/", "slurm_restart_count", std::string(restarts ? restarts : ""));
  h5_attr(f, "/", "device_binding", p.device_binding);
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  h5_attr(f, "/", "hostname", std::string(host));
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  h5_attr(f, "/", "written", std::string(when));
}

}  // namespace rs
