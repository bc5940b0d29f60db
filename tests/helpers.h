// Test helpers: temporary directories and small data files of every format.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace rs::test {

namespace fs = std::filesystem;

// A fresh directory under the build tree's tmp/, removed on destruction.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::current_path() / "tmp" / name;
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  if (path.size() > 3 && path.substr(path.size() - 3) == ".gz") {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, b.data(), unsigned(b.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  }
}

inline std::vector<uint8_t> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                                      const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> b{0, 0, type, uint8_t(dims.size())};
  for (uint32_t d : dims) b.insert(b.end(), {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)});
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// A learnable toy problem: `classes` classes of h x w images, each class a
// bright stripe in its own rows, plus seeded noise. Returns (images, labels).
inline void toy_data(int n, int h, int w, int classes, uint32_t seed, std::vector<uint8_t>& images,
                     std::vector<uint8_t>& labels) {
  images.assign(size_t(n) * h * w, 0);
  labels.assign(size_t(n), 0);
  uint32_t s = seed * 2654435761u + 1;
  auto rnd = [&] { return s = s * 1664525u + 1013904223u; };
  for (int i = 0; i < n; ++i) {
    const int c = int(rnd() >> 8) % classes;
    labels[i] = uint8_t(c);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const bool on = (y * classes / h) == c;
        images[(size_t(i) * h + y) * w + x] = uint8_t((on ? 100 : 80) + (rnd() >> 25));
      }
  }
}

// Writes toy IDX train/test files into dir and returns a config's [data] block.
inline std::string toy_idx(const TempDir& dir, int ntrain, int ntest, int h, int w, int classes) {
  std::vector<uint8_t> im, lb;
  for (auto [name, n, seed] : {std::tuple{"train", ntrain, 1u}, std::tuple{"test", ntest, 2u}}) {
    toy_data(n, h, w, classes, seed, im, lb);
    write_bytes(dir / (std::string(name) + "-images.gz"), idx_bytes(8, {uint32_t(n), uint32_t(h), uint32_t(w)}, im));
    write_bytes(dir / (std::string(name) + "-labels"), idx_bytes(8, {uint32_t(n)}, lb));
  }
  return "[data]\nformat = \"idx\"\ntrain_images = \"" + (dir / "train-images.gz") + "\"\ntrain_labels = \"" +
         (dir / "train-labels") + "\"\ntest_images = \"" + (dir / "test-images.gz") + "\"\ntest_labels = \"" +
         (dir / "test-labels") + "\"\nclasses = " + std::to_string(classes) + "\n";
}

}  // namespace rs::test
