// Inputs for inference, read one range at a time. Every rank opens the input
// itself (headers and sizes only) and then reads just its own contiguous
// slice, a chunk at a time, so an input larger than memory works.
//
//   idx      IDX images, gzip or raw; raw files are read with seeks, gzip
//            files are decompressed from the start up to the slice (gzip has
//            no random access: use raw IDX for very large inputs). Labels from
//            --labels, or the sibling "*-labels-idx1-ubyte*" file if present.
//   hdf5     /images (N, C, H, W) or (N, H, W), uint8 or float32, read by
//            hyperslab; /labels (N) when present.
//   cifar10  one CIFAR-10 .bin file, or a directory: its *.bin files in name order.
//   images   a directory of PNG/JPEG files (name order), decoded with
//            libpng / libjpeg-turbo to the model's channels (grey = luminance
//            0.299R + 0.587G + 0.114B; grey to RGB repeats it; alpha dropped),
//            then resized to the model's H x W with stb_image_resize's
//            default filter (aspect ratio not kept). Pixels are used as they
//            are (Fashion-MNIST is light garment on black: invert photos of
//            dark garments on white yourself). An image that cannot be
//            decoded is an error naming the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace rs {

struct SourceOptions {
  std::string path, format = "auto", labels;  // format: auto | idx | hdf5 | cifar10 | images
  int64_t classes = 10;
  int c = 1, h = 1, w = 1;  // the model's input: what images are converted to
};

class Source {
 public:
  virtual ~Source() = default;
  const std::string& format() const { return m_format; }
  const std::string& path() const { return m_path; }
  const std::string& labels_path() const { return m_labels_path; }  // where labels come from ("" if none)
  int64_t size() const { return m_n; }
  int c() const { return m_c; }
  int h() const { return m_h; }
  int w() const { return m_w; }
  bool has_labels() const { return !m_labels_path.empty(); }
  // Samples [first, first + count) as a Dataset (labels 0 when there are none).
  virtual Dataset read(int64_t first, int64_t count) = 0;
  // File names of all samples (images only; empty otherwise).
  virtual const std::vector<std::string>& names() const { return m_names; }

 protected:
  Dataset empty_chunk(int64_t count) const;  // shape and source filled in, no samples yet
  std::string m_format, m_path, m_labels_path;
  int64_t m_n = 0;
  int m_c = 0, m_h = 0, m_w = 0;
  std::vector<std::string> m_names;
};

// Memory this node can still give (MemAvailable), in bytes.
double available_memory_bytes();

// Lower-case extension of a path, with its dot (".png").
std::string file_extension(const std::string& path);

// Opens and checks an input; throws UserError naming the file and problem.
std::unique_ptr<Source> open_source(const SourceOptions& o);

}  // namespace rs
