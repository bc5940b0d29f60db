#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/cifar10.h"
#include "data/hdf5.h"
#include "data/images.h"
#include "data/idx.h"
#include "error.h"
#include "kernels/hd_math.h"

namespace fs = std::filesystem;

namespace rs {
namespace {}  // namespace

void check_labels(const Dataset& d, int64_t classes, const std::string& where, int64_t first) {
  for (int64_t i = 0; i < d.n; ++i)
    if (d.labels[i] < 0 || d.labels[i] >= classes)
      fail("{}: label {} of sample {} is outside [0, {}), the classes (data.classes)", where, d.labels[i], first + i,
           classes);
}

void set_shape(Dataset& d, const std::vector<uint64_t>& dims, const std::string& path) {
  if (dims.size() != 3 && dims.size() != 4)
    fail("{}: images need 3 (N, H, W) or 4 (N, C, H, W) dimensions, got {}", path, dims.size());
  for (uint64_t x : dims)
    if (x == 0) fail("{}: a dimension of the images is 0", path);
  const bool chw = dims.size() == 4;
  for (size_t i = 1; i < dims.size(); ++i)
    if (dims[i] > 65535) fail("{}: image dimension {} is too large", path, dims[i]);
  d.n = int64_t(dims[0]);
  d.c = chw ? int(dims[1]) : 1;
  d.h = int(dims[chw ? 2 : 1]);
  d.w = int(dims[chw ? 3 : 2]);
}

std::vector<int64_t> permutation(int64_t n, uint64_t key) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const U32x4 r = philox4x32(key, 0, uint64_t(i));
    const uint64_t x = uint64_t(r.v[0]) << 32 | r.v[1];
    const int64_t j = int64_t(static_cast<unsigned __int128>(x) * uint64_t(i + 1) >> 64);  // uniform in [0, i]
    std::swap(p[i], p[j]);
  }
  return p;
}

void channel_stats(const Dataset& d, const std::vector<int64_t>& idx, std::vector<float>& mean,
                   std::vector<float>& inv_std) {
  const size_t hw = size_t(d.h) * d.w;
  const double scale = d.is_u8() ? 1.0 / 255.0 : 1.0;
  mean.assign(d.c, 0.f);
  inv_std.assign(d.c, 1.f);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < d.c; ++c) {
    double s = 0, s2 = 0;
    for (int64_t i : idx) {
      const size_t off = (size_t(i) * d.c + c) * hw;
      double ls = 0, ls2 = 0;
      for (size_t k = 0; k < hw; ++k) {
        const double x = (d.is_u8() ? double(d.u8[off + k]) : double(d.f32[off + k])) * scale;
        ls += x, ls2 += x * x;
      }
      s += ls, s2 += ls2;
    }
    const double n = double(idx.size()) * double(hw);
    const double m = s / n, var = std::max(s2 / n - m * m, 0.0);
    mean[c] = float(m);
    inv_std[c] = float(1.0 / std::sqrt(var > 1e-12 ? var : 1.0));
  }
}

Data load_data(const DataConfig& cfg, uint64_t seed) {
  Data out;
  if (cfg.format == "idx") {
    out.train = read_idx(cfg.train_images, cfg.train_labels, cfg.classes);
    if (!cfg.test_images.empty()) out.test = read_idx(cfg.test_images, cfg.test_labels, cfg.classes);
  } else if (cfg.format == "cifar10") {
    out.train = read_cifar10(cfg.path, true, cfg.classes);
    out.test = read_cifar10(cfg.path, false, cfg.classes);
  } else if (cfg.format == "images") {
    const int c = int(cfg.channels), h = int(cfg.image_size[0]), w = int(cfg.image_size[1]);
    out.train = read_image_folders(cfg.path, c, h, w, cfg.classes, out.class_names);
    if (!cfg.test_path.empty()) out.test = read_image_folders(cfg.test_path, c, h, w, cfg.classes, out.class_names);
  } else {
    out.train = read_hdf5(cfg.path, cfg.classes);
    if (!cfg.test_path.empty()) out.test = read_hdf5(cfg.test_path, cfg.classes);
  }
  const Dataset& t = out.train;
  if (out.test.n > 0 && (out.test.c != t.c || out.test.h != t.h || out.test.w != t.w))
    fail("{}: test images are {}x{}x{}, training images {}x{}x{}", out.test.source, out.test.c, out.test.h, out.test.w,
         t.c, t.h, t.w);
  if (cfg.validation >= t.n)
    fail("data.validation: {} held-out samples leave none of the {} training samples", cfg.validation, t.n);
  std::vector<int64_t> p = permutation(t.n, rng_key(uint64_t(seed), 0x5641u /* "VA" */));
  out.val_idx.assign(p.end() - cfg.validation, p.end());
  p.resize(size_t(t.n - cfg.validation));
  std::sort(p.begin(), p.end());
  std::sort(out.val_idx.begin(), out.val_idx.end());
  out.train_idx = std::move(p);
  if (cfg.normalize)
    channel_stats(t, out.train_idx, out.mean, out.inv_std);
  else
    out.mean.assign(t.c, 0.f), out.inv_std.assign(t.c, 1.f);
  return out;
}

}  // namespace rs
