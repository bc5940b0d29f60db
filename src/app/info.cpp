// ranksweep info: build options, backends, devices and library versions.
#include <fmt/format.h>

#include "app/commands.h"
#include "app/launch.h"
#include "backend/device.h"
#include "build_info.h"
#include "io/provenance.h"
#include "kernels/kernels_cpu.h"

namespace rs {

int info_command(const Comm& comm) {
  std::string why;
  const int threads = choose_threads(comm, &why);  // collective: before the leader check
  if (!comm.leader()) return 0;
  fmt::print("ranksweep {} ({}, {} build)\n", RS_VERSION, RS_GIT_SHA, RS_BUILD_TYPE);
  fmt::print("backends: cpu{}\n", RS_HAVE_CUDA ? ", cuda" : " (CUDA backend not built)");
  fmt::print("cpu: {} threads per rank ({}); denormals {}\n", threads, why,
             denormals_flushed() ? "flushed to zero (FTZ, DAZ)" : "kept (this CPU has no FTZ/DAZ)");
  const CacheSizes& c = cpu_caches();
  fmt::print("cpu caches per core (kernel blocking, from {}): L1d {} KB, L2 {} KB, L3 share {} KB\n", c.source,
             c.l1d >> 10, c.l2 >> 10, c.l3_share >> 10);
  if (RS_HAVE_CUDA) fmt::print("{}", cuda_info());
  fmt::print("world: {} rank(s)\n", comm.size());
  fmt::print("libraries: {}\n", library_versions());
  return 0;
}

}  // namespace rs
