#include "io/output_dir.h"

#include <fmt/format.h>

#include <ctime>
#include <filesystem>

namespace rs {

std::string default_out_dir(const std::string& config_path) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  const std::string base = "runs/" + std::filesystem::path(config_path).stem().string() + "-" + stamp;
  std::string dir = base;
  for (int k = 2; std::filesystem::exists(dir); ++k) dir = fmt::format("{}-{}", base, k);
  return dir;
}

}  // namespace rs
