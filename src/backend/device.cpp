#include "backend/device.h"

#include <algorithm>
#include <cstdlib>

#include "build_info.h"
#include "error.h"

namespace rs {

DeviceChoice choose_device(const std::string& requested, bool compiled,
                           const std::vector<std::vector<std::string>>& node_devices, int local_rank) {
  DeviceChoice c;
  const std::vector<std::string>& mine = node_devices.at(size_t(local_rank));
  const int visible = int(mine.size()), local_size = int(node_devices.size());
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
  const char* vis = std::getenv("CUDA_VISIBLE_DEVICES");
  // The device each rank of the node takes: its only one, or the one at its local rank.
  auto pick = [](const std::vector<std::string>& devices, int r) { return devices.size() == 1 ? 0 : r; };
  std::vector<std::string> taken;  // decided for the whole node, so every rank of it fails alike
  for (int r = 0; r < local_size; ++r) {
    const std::vector<std::string>& d = node_devices[size_t(r)];
    if (d.empty()) continue;
    if (pick(d, r) >= int(d.size()))
      fail(
          "device cuda: {} ranks on this node but {} visible GPU{} (CUDA_VISIBLE_DEVICES={}); run at most one rank "
          "per GPU",
          local_size, d.size(), d.size() == 1 ? "" : "s", vis ? vis : "unset");
    taken.push_back(d[size_t(pick(d, r))]);
  }
  std::vector<std::string> distinct = taken;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.size() < taken.size())
    fail(
        "device cuda: {} ranks on this node but {} distinct GPU{} among the ones they see; run at most one rank "
        "per GPU",
        taken.size(), distinct.size(), distinct.size() == 1 ? "" : "s");
  c.cuda = true;
  c.device = pick(mine, local_rank);
  c.pci = mine[size_t(c.device)];
  c.why = visible == 1 ? fmt::format("{}: the one GPU this rank sees ({})", requested, c.pci)
                       : fmt::format("{}: local rank {} of {} -> GPU {} of {} ({})", requested, local_rank, local_size,
                                     c.device, visible, c.pci);
  return c;
}

#if !RS_HAVE_CUDA
std::vector<std::string> visible_cuda_devices() { return {}; }
std::string cuda_info() { return ""; }
#endif

}  // namespace rs
