// Datasets in memory: images (N, C, H, W) as uint8 or float32, labels int32.
// Readers validate everything and throw UserError("FILE: problem").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/host_samples.h"
#include "config/config.h"
#include "data/array.h"

namespace rs {

struct Dataset {
  std::string source;  // file(s) it came from, for messages
  int64_t n = 0;
  int c = 0, h = 0, w = 0;
  Array<uint8_t> u8;      // (N, C, H, W) when the source is uint8
  Array<float> f32;       // (N, C, H, W) when the source is float32
  Array<int32_t> labels;  // (N)
  size_t sample_size() const { return size_t(c) * h * w; }
  bool is_u8() const { return f32.empty(); }
  HostSamples view() const {
    return {is_u8() ? u8.data() : nullptr, is_u8() ? nullptr : f32.data(), labels.data(), c, h, w};
  }
};

// Fills n, c, h, w from image dims (N, H, W) or (N, C, H, W), checking them.
void set_shape(Dataset& d, const std::vector<uint64_t>& dims, const std::string& path);

// UserError naming `where` for a label outside [0, classes); `first` is the
// index of d's sample 0 in the whole input.
void check_labels(const Dataset& d, int64_t classes, const std::string& where, int64_t first = 0);

// Training data ready for a run: the training set with its seeded
// train/validation split, the test set (may be empty) and normalisation.
struct Data {
  Dataset train, test;
  std::vector<int64_t> train_idx, val_idx;  // indices into train
  std::vector<float> mean, inv_std;         // per channel, applied after scaling to [0, 1]
  std::vector<std::string> class_names;     // images: the class folders' names (else empty)
};

Data load_data(const DataConfig& cfg, uint64_t seed);

// Seeded Fisher-Yates permutation of 0..n-1 from the counter-based RNG:
// identical on every platform and rank.
std::vector<int64_t> permutation(int64_t n, uint64_t key);

// Per-channel mean and 1/std of the given samples, after scaling to [0, 1].
void channel_stats(const Dataset& d, const std::vector<int64_t>& idx, std::vector<float>& mean,
                   std::vector<float>& inv_std);

}  // namespace rs
