#include "app/launch.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "backend/device.h"
#include "build_info.h"

namespace rs {

std::unique_ptr<Backend> make_backend(const TrainConfig& t, const Comm& placement, std::string* why) {
  int local_size = 1;
  const int local = local_rank(placement.raw(), &local_size);
  const DeviceChoice d = choose_device(t.device, RS_HAVE_CUDA, visible_cuda_devices(), local, local_size);
  *why = d.why;
  if (!d.cuda) return make_cpu_backend();
#if RS_HAVE_CUDA
  return make_cuda_backend(d.device, t.deterministic);
#else
  throw std::logic_error("choose_device picked CUDA in a build without the CUDA backend");
#endif
}

int choose_threads(const Comm& comm, std::string* why) {
  int local = 1;
  local_rank(comm.raw(), &local);
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && *env) {
    *why = "OMP_NUM_THREADS";
    return omp_get_max_threads();
  }
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int n = std::max(1, cores / local);
  *why = fmt::format("{} cores / {} ranks on this node", cores, local);
  omp_set_num_threads(n);
  return n;
}

}  // namespace rs
