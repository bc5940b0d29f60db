// Samples in host memory, as a backend reads them to build a batch: pixels
// (N, C, H, W) as uint8 or float32 (exactly one is set) and labels (N).
// A plain view: the backend knows nothing of files or datasets.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rs {

struct HostSamples {
  const uint8_t* u8 = nullptr;
  const float* f32 = nullptr;
  const int32_t* labels = nullptr;
  int c = 0, h = 0, w = 0;
  size_t sample_size() const { return size_t(c) * h * w; }
  bool is_u8() const { return f32 == nullptr; }
};

}  // namespace rs
