// Datasets in memory: images (N, C, H, W) as uint8 or float32, labels int32.
// Readers validate everything and throw UserError("FILE: problem").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/array.h"

namespace rs {

struct Dataset {
  std::string source;  // file(s) it came from, for messages
  int64_t n = 0;
  int c = 0, h = 0, w = 0;
  Array<uint8_t> u8;       // (N, C, H, W) when the source is uint8
  Array<float> f32;        // (N, C, H, W) when the source is float32
  Array<int32_t> labels;   // (N)
  size_t sample_size() const { return size_t(c) * h * w; }
  bool is_u8() const { return f32.empty(); }
};

// Fills n, c, h, w from image dims (N, H, W) or (N, C, H, W), checking them.
void set_shape(Dataset& d, const std::vector<uint64_t>& dims, const std::string& path);

// One IDX file (ubyte; gzip or raw), header and size checked on opening;
// read() takes records (slices along the first dimension) in any order,
// cheapest in increasing order (gzip seeks decompress from the start).
class IdxFile {
 public:
  explicit IdxFile(const std::string& path);
  ~IdxFile();
  IdxFile(const IdxFile&) = delete;
  IdxFile& operator=(const IdxFile&) = delete;
  void read(int64_t first, int64_t count, uint8_t* out);
  std::vector<uint64_t> dims;  // as in the header
  uint64_t record = 1;         // bytes per record

 private:
  std::string m_path;
  void* m_f = nullptr;  // gzFile
  bool m_gz = false;
  uint64_t m_offset = 0, m_pos = 0;
};

// UserError naming `where` for a label outside [0, classes); `first` is the
// index of d's sample 0 in the whole input.
void check_labels(const Dataset& d, int64_t classes, const std::string& where, int64_t first = 0);

// Whole-file readers (implemented over the range sources of data/source.h).
// IDX (MNIST format), gzip or raw. images: ubyte (N, H, W) or (N, C, H, W).
Dataset read_idx(const std::string& images, const std::string& labels, int64_t classes);
// CIFAR-10 binary: `dir`/data_batch_*.bin (train) or `dir`/test_batch.bin.
Dataset read_cifar10(const std::string& dir, bool train, int64_t classes);
// HDF5: /images uint8 or float32 (N, C, H, W) or (N, H, W); /labels integer (N).
Dataset read_hdf5(const std::string& path, int64_t classes);

// Training data ready for a run: the training set with its seeded
// train/validation split, the test set (may be empty) and normalisation.
struct Data {
  Dataset train, test;
  std::vector<int64_t> train_idx, val_idx;  // indices into train
  std::vector<float> mean, inv_std;         // per channel, applied after scaling to [0, 1]
};

Data load_data(const DataConfig& cfg, uint64_t seed);

// Seeded Fisher-Yates permutation of 0..n-1 from the counter-based RNG:
// identical on every platform and rank.
std::vector<int64_t> permutation(int64_t n, uint64_t key);

// Per-channel mean and 1/std of the given samples, after scaling to [0, 1].
void channel_stats(const Dataset& d, const std::vector<int64_t>& idx, std::vector<float>& mean,
                   std::vector<float>& inv_std);

}  // namespace rs
