#include "data/source.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "error.h"
#include "io/h5.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string extension(const std::string& p) { return lower(fs::path(p).extension().string()); }

Dataset chunk(const Source& s, int64_t count) {
  Dataset d;
  d.source = s.path();
  d.n = count, d.c = s.c(), d.h = s.h(), d.w = s.w();
  return d;
}

class IdxSource : public Source {
 public:
  IdxSource(const SourceOptions& o) : m_images(o.path), m_classes(o.classes) {
    m_format = "idx", m_path = o.path;
    Dataset d;
    set_shape(d, m_images.dims, o.path);
    m_n = d.n, m_c = d.c, m_h = d.h, m_w = d.w;
    std::string lab = o.labels;
    if (lab.empty()) {  // Fashion-MNIST/MNIST naming: *-images-idx3-ubyte* next to *-labels-idx1-ubyte*
      const std::string name = fs::path(o.path).filename().string();
      const size_t k = name.find("images-idx3-ubyte");
      if (k != std::string::npos) {
        const fs::path sib = fs::path(o.path).parent_path() /
                             (name.substr(0, k) + "labels-idx1-ubyte" + name.substr(k + 17));
        std::error_code ec;
        if (fs::is_regular_file(sib, ec)) lab = sib.string();
      }
    }
    if (!lab.empty()) {
      m_labels = std::make_unique<IdxFile>(lab);
      if (m_labels->dims.size() != 1) fail("{}: labels need 1 dimension, got {}", lab, m_labels->dims.size());
      if (int64_t(m_labels->dims[0]) != m_n) fail("{}: {} labels for {} images in {}", lab, m_labels->dims[0], m_n, o.path);
      m_labels_path = lab;
    }
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = chunk(*this, count);
    std::vector<uint8_t> px(size_t(count) * d.sample_size()), lab(size_t(count), 0);
    if (count > 0) m_images.read(first, count, px.data());
    if (count > 0 && m_labels) m_labels->read(first, count, lab.data());
    d.u8 = std::move(px);
    d.labels = std::vector<int32_t>(lab.begin(), lab.end());
    if (m_labels) check_labels(d, m_classes, m_labels_path, first);
    return d;
  }

 private:
  IdxFile m_images;
  std::unique_ptr<IdxFile> m_labels;
  int64_t m_classes;
};

class Hdf5Source : public Source {
 public:
  Hdf5Source(const SourceOptions& o) : m_classes(o.classes) {
    m_format = "hdf5", m_path = o.path;
    h5_quiet();
    m_file = h5_open_read(o.path);
    const auto dims = h5_dims(m_file, "/images", o.path);
    Dataset d;
    set_shape(d, std::vector<uint64_t>(dims.begin(), dims.end()), o.path);
    m_n = d.n, m_c = d.c, m_h = d.h, m_w = d.w;
    m_rank = int(dims.size());
    size_t tsize = 0;
    const H5T_class_t cls = h5_type_class(m_file, "/images", &tsize);
    m_u8 = cls == H5T_INTEGER && tsize == 1;
    if (!m_u8 && !(cls == H5T_FLOAT && tsize == 4)) fail("{}: /images must be uint8 or float32", o.path);
    if (h5_exists(m_file, "/labels")) {
      const auto ld = h5_dims(m_file, "/labels", o.path);
      if (ld.size() != 1) fail("{}: /labels needs 1 dimension, got {}", o.path, ld.size());
      if (int64_t(ld[0]) != m_n) fail("{}: {} labels for {} images", o.path, ld[0], m_n);
      if (h5_type_class(m_file, "/labels", nullptr) != H5T_INTEGER) fail("{}: /labels must be integers", o.path);
      m_labels_path = o.path + ":/labels";
    }
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = chunk(*this, count);
    const size_t ss = d.sample_size();
    std::vector<int32_t> lab(size_t(count), 0);
    if (m_u8) {
      std::vector<uint8_t> v(size_t(count) * ss);
      slab("/images", first, count, H5T_NATIVE_UINT8, v.data());
      d.u8 = std::move(v);
    } else {
      std::vector<float> v(size_t(count) * ss);
      slab("/images", first, count, H5T_NATIVE_FLOAT, v.data());
      for (float x : v)
        if (!std::isfinite(x)) fail("{}: /images holds a non-finite value (samples {}..{})", m_path, first, first + count);
      d.f32 = std::move(v);
    }
    if (has_labels()) slab("/labels", first, count, H5T_NATIVE_INT32, lab.data());
    d.labels = std::move(lab);
    if (has_labels()) check_labels(d, m_classes, m_labels_path, first);
    return d;
  }

 private:
  // Rows [first, first + count) of a dataset whose first dimension is the sample.
  void slab(const char* name, int64_t first, int64_t count, hid_t type, void* out) {
    if (count == 0) return;
    H5 ds(H5Dopen2(m_file, name, H5P_DEFAULT), H5Dclose);
    H5 fs_(H5Dget_space(ds), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(fs_);
    std::vector<hsize_t> dims(static_cast<size_t>(rank)), start(static_cast<size_t>(rank), 0), cnt;
    H5Sget_simple_extent_dims(fs_, dims.data(), nullptr);
    cnt = dims;
    start[0] = hsize_t(first), cnt[0] = hsize_t(count);
    H5Sselect_hyperslab(fs_, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
    H5 ms(H5Screate_simple(rank, cnt.data(), nullptr), H5Sclose);
    if (ds.id() < 0 || H5Dread(ds, type, ms, fs_, H5P_DEFAULT, out) < 0)
      fail("{}: cannot read {} samples {}..{} (corrupt or truncated file?)", m_path, name, first, first + count);
  }
  H5 m_file;
  int m_rank = 0;
  bool m_u8 = true;
  int64_t m_classes;
};

class CifarSource : public Source {
  static constexpr int64_t kRec = 1 + 3 * 32 * 32;

 public:
  // `files` in order; `where` names the input in messages.
  CifarSource(const std::string& where, std::vector<std::string> files, int64_t classes)
      : m_files(std::move(files)), m_classes(classes) {
    m_format = "cifar10", m_path = where;
    std::error_code ec;
    for (const std::string& f : m_files) {
      if (!fs::is_regular_file(f, ec)) fail("{}: file not found", f);
      const uint64_t size = fs::file_size(f, ec);
      if (size == 0) fail("{}: empty file", f);
      if (size % kRec) fail("{}: size {} is not a multiple of the 3073-byte CIFAR-10 record", f, size);
      m_start.push_back(m_n);
      m_n += int64_t(size / kRec);
    }
    m_start.push_back(m_n);
    m_c = 3, m_h = 32, m_w = 32;
    m_labels_path = where;
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = chunk(*this, count);
    std::vector<uint8_t> px(size_t(count) * d.sample_size());
    std::vector<int32_t> lab(static_cast<size_t>(count));
    std::vector<uint8_t> rec(kRec);
    for (int64_t i = first; i < first + count;) {
      const size_t f = size_t(std::upper_bound(m_start.begin(), m_start.end(), i) - m_start.begin() - 1);
      std::ifstream in(m_files[f], std::ios::binary);
      in.seekg(std::streamoff((i - m_start[f]) * kRec));
      for (; i < first + count && i < m_start[f + 1]; ++i) {
        if (!in.read(reinterpret_cast<char*>(rec.data()), kRec)) fail("{}: cannot read record {}", m_files[f], i - m_start[f]);
        lab[size_t(i - first)] = rec[0];
        std::copy(rec.begin() + 1, rec.end(), px.begin() + (i - first) * (kRec - 1));
      }
    }
    d.u8 = std::move(px);
    d.labels = std::move(lab);
    check_labels(d, m_classes, m_path, first);
    return d;
  }

 private:
  std::vector<std::string> m_files;
  std::vector<int64_t> m_start;  // first sample of each file; back() = n
  int64_t m_classes;
};

class ImageSource : public Source {
 public:
  ImageSource(const SourceOptions& o) {
    m_format = "images", m_path = o.path;
    std::error_code ec;
    if (!fs::is_directory(o.path, ec)) fail("{}: --format images needs a directory of PNG/JPEG files", o.path);
    for (const auto& e : fs::directory_iterator(o.path, ec)) {
      const std::string x = extension(e.path().string());
      if (e.is_regular_file() && (x == ".png" || x == ".jpg" || x == ".jpeg")) m_names.push_back(e.path().filename().string());
    }
    std::sort(m_names.begin(), m_names.end());
    if (m_names.empty()) fail("{}: no .png/.jpg/.jpeg files in the directory", o.path);
    if (o.c != 1 && o.c != 3) fail("{}: images convert to 1 or 3 channels; the model takes {}", o.path, o.c);
    m_n = int64_t(m_names.size());
    m_c = o.c, m_h = o.h, m_w = o.w;
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = chunk(*this, count);
    const size_t ss = d.sample_size(), hw = size_t(m_h) * m_w;
    std::vector<uint8_t> px(size_t(count) * ss);
    int64_t bad = -1;
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < count; ++i) {
      if (!convert(first + i, px.data() + size_t(i) * ss, hw)) {
#pragma omp critical
        bad = bad < 0 ? i : std::min(bad, i);
      }
    }
    if (bad >= 0) {  // decode it again alone for stb's (global) failure reason
      const std::string file = (fs::path(m_path) / m_names[size_t(first + bad)]).string();
      int w, h, n;
      stbi_uc* p = stbi_load(file.c_str(), &w, &h, &n, m_c);
      stbi_image_free(p);
      fail("{}: cannot decode image ({})", file, p ? "read failed" : stbi_failure_reason());
    }
    d.u8 = std::move(px);
    d.labels = std::vector<int32_t>(size_t(count), 0);
    return d;
  }

 private:
  // Decodes image k to the model's channels and size, planar (C, H, W).
  bool convert(int64_t k, uint8_t* out, size_t hw) const {
    const std::string file = (fs::path(m_path) / m_names[size_t(k)]).string();
    int w = 0, h = 0, n = 0;
    stbi_uc* p = stbi_load(file.c_str(), &w, &h, &n, m_c);
    if (!p) return false;
    std::vector<uint8_t> sized;
    const uint8_t* src = p;
    if (w != m_w || h != m_h) {
      sized.resize(hw * size_t(m_c));
      if (!stbir_resize_uint8(p, w, h, 0, sized.data(), m_w, m_h, 0, m_c)) {
        stbi_image_free(p);
        return false;
      }
      src = sized.data();
    }
    for (int c = 0; c < m_c; ++c)
      for (size_t i = 0; i < hw; ++i) out[size_t(c) * hw + i] = src[i * size_t(m_c) + size_t(c)];
    stbi_image_free(p);
    return true;
  }
};

}  // namespace

std::unique_ptr<Source> open_source(const SourceOptions& o) {
  std::string format = o.format;
  std::error_code ec;
  if (!fs::exists(o.path, ec)) fail("{}: file not found", o.path);
  if (format == "auto") {
    if (fs::is_directory(o.path, ec)) {
      bool bins = false;
      for (const auto& e : fs::directory_iterator(o.path, ec)) bins = bins || extension(e.path().string()) == ".bin";
      format = bins ? "cifar10" : "images";
    } else {
      const std::string x = extension(o.path);
      format = x == ".h5" || x == ".hdf5" ? "hdf5" : x == ".bin" ? "cifar10" : "idx";
    }
  }
  if (!o.labels.empty() && format != "idx")
    fail("--labels {}: only IDX inputs take a separate labels file (HDF5 uses /labels, CIFAR-10 its records)",
         o.labels);
  if (format == "idx") return std::make_unique<IdxSource>(o);
  if (format == "hdf5") return std::make_unique<Hdf5Source>(o);
  if (format == "cifar10") {
    std::vector<std::string> files{o.path};
    if (fs::is_directory(o.path, ec)) {
      files.clear();
      for (const auto& e : fs::directory_iterator(o.path, ec))
        if (e.is_regular_file() && extension(e.path().string()) == ".bin") files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
      if (files.empty()) fail("{}: no CIFAR-10 .bin files in the directory", o.path);
    }
    return std::make_unique<CifarSource>(o.path, std::move(files), o.classes);
  }
  return std::make_unique<ImageSource>(o);
}

Dataset read_idx(const std::string& images, const std::string& labels, int64_t classes) {
  IdxSource s({images, "idx", labels, classes});
  return s.read(0, s.size());
}

Dataset read_cifar10(const std::string& dir, bool train, int64_t classes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: CIFAR-10 directory not found", dir);
  std::vector<std::string> files;
  if (train) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("data_batch_", 0) == 0 && extension(name) == ".bin") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) fail("{}: no data_batch_*.bin files", dir);
  } else {
    const std::string t = (fs::path(dir) / "test_batch.bin").string();
    if (!fs::exists(t, ec)) return Dataset{};
    files.push_back(t);
  }
  CifarSource s(dir, std::move(files), classes);
  return s.read(0, s.size());
}

Dataset read_hdf5(const std::string& path, int64_t classes) {
  Hdf5Source s({path, "hdf5", "", classes});
  if (!s.has_labels()) fail("{}: no dataset /labels", path);
  return s.read(0, s.size());
}

}  // namespace rs
