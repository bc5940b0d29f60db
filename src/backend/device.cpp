#include "backend/device.h"

#include <cstdlib>

#include "build_info.h"
#include "error.h"

namespace rs {

DeviceChoice choose_device(const std::string& requested, bool compiled, int visible, int local_rank, int local_size) {
  DeviceChoice c;
  if (requested == "cpu") {
    c.why = "requested";
    return c;
  }
  if (requested == "cuda" && !compiled)
    fail("device cuda: this build has no CUDA backend (configure with -DRANKSWEEP_CUDA=ON on a machine with nvcc)");
  if (requested == "cuda" && visible == 0) fail("device cuda: no CUDA device is visible to this process");
  if (requested == "auto" && (!compiled || visible == 0)) {
    c.why = compiled ? "auto: no CUDA device visible" : "auto: no CUDA backend in this build";
    return c;
  }
  if (local_size > visible) {
    const char* vis = std::getenv("CUDA_VISIBLE_DEVICES");
    fail(
        "device cuda: {} ranks on this node but {} visible GPU{} (CUDA_VISIBLE_DEVICES={}); run at most one rank "
        "per GPU",
        local_size, visible, visible == 1 ? "" : "s", vis ? vis : "unset");
  }
  c.cuda = true;
  c.device = local_rank;
  c.why =
      fmt::format("{}: local rank {} of {} -> GPU {} of {}", requested, local_rank, local_size, local_rank, visible);
  return c;
}

#if !RS_HAVE_CUDA
int visible_cuda_devices() { return 0; }
std::string cuda_info() { return ""; }
#endif

}  // namespace rs
