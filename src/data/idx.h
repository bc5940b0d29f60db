// IDX (the MNIST format): images ubyte (N, H, W) or (N, C, H, W), labels
// ubyte (N); gzip or raw. Raw files are read with seeks; gzip files are
// decompressed from the start up to the range (gzip has no random access).
// Labels from SourceOptions::labels, or the sibling "*-labels-idx1-ubyte*"
// of a "*-images-idx3-ubyte*" file when there is one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/source.h"

namespace rs {

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

std::unique_ptr<Source> open_idx(const SourceOptions& o);

// The whole of an images file and its labels file.
Dataset read_idx(const std::string& images, const std::string& labels, int64_t classes);

}  // namespace rs
