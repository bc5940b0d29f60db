// HDF5 inputs: /images (N, C, H, W) or (N, H, W), uint8 or float32, read by
// hyperslab; /labels (N) integers when present.
#pragma once

#include <memory>
#include <string>

#include "data/source.h"

namespace rs {

std::unique_ptr<Source> open_hdf5(const SourceOptions& o);

// The whole file (training data: /labels required).
Dataset read_hdf5(const std::string& path, int64_t classes);

}  // namespace rs
