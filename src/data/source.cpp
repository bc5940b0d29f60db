#include "data/source.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/cifar10.h"
#include "data/hdf5.h"
#include "data/idx.h"
#include "data/images.h"
#include "error.h"

namespace fs = std::filesystem;

namespace rs {
std::string file_extension(const std::string& p) {
  std::string x = fs::path(p).extension().string();
  for (char& ch : x) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return x;
}

Dataset Source::empty_chunk(int64_t count) const {
  Dataset d;
  d.source = m_path;
  d.n = count, d.c = m_c, d.h = m_h, d.w = m_w;
  // What a file declares is not what it holds: refuse before allocating what cannot fit.
  const double bytes = double(count) * double(d.sample_size() + 4);  // uint8 samples (float: 4x) and labels
  const double have = available_memory_bytes();
  if (bytes > have)
    fail("{}: {} samples of {}x{}x{} need {:.3g} GB, more than the {:.3g} GB of memory available", m_path, count, m_c,
         m_h, m_w, bytes / 1e9, have / 1e9);
  return d;
}

double available_memory_bytes() {
  std::ifstream m("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (m >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return double(::sysconf(_SC_AVPHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
}

std::unique_ptr<Source> open_source(const SourceOptions& o) {
  std::string format = o.format;
  std::error_code ec;
  if (!fs::exists(o.path, ec)) fail("{}: file not found", o.path);
  if (format == "auto") {
    if (fs::is_directory(o.path, ec)) {
      bool bins = false;
      for (const auto& e : fs::directory_iterator(o.path, ec))
        bins = bins || file_extension(e.path().string()) == ".bin";
      format = bins ? "cifar10" : "images";
    } else {
      const std::string x = file_extension(o.path);
      format = x == ".h5" || x == ".hdf5" ? "hdf5" : x == ".bin" ? "cifar10" : "idx";
    }
  }
  if (!o.labels.empty() && format != "idx")
    fail("--labels {}: only IDX inputs take a separate labels file (HDF5 uses /labels, CIFAR-10 its records)",
         o.labels);
  if (format == "idx") return open_idx(o);
  if (format == "hdf5") return open_hdf5(o);
  if (format == "cifar10") {
    std::vector<std::string> files{o.path};
    if (fs::is_directory(o.path, ec)) {
      files.clear();
      for (const auto& e : fs::directory_iterator(o.path, ec))
        if (std::error_code t; e.is_regular_file(t) && file_extension(e.path().string()) == ".bin")
          files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
      if (files.empty()) fail("{}: no CIFAR-10 .bin files in the directory", o.path);
    }
    return open_cifar10(o.path, std::move(files), o.classes);
  }
  return open_images(o);
}

}  // namespace rs
