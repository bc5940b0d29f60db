// Default output directories: runs/<config stem>-<date>-<time>, with -2, -3, ...
// appended when that name is taken, so two runs started in the same second
// do not share one.
#pragma once

#include <string>

namespace rs {

std::string default_out_dir(const std::string& config_path);

}  // namespace rs
