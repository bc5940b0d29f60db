#include "data/hdf5.h"

#include <algorithm>
#include <filesystem>

#include "error.h"
#include "io/h5.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

class Hdf5Source final : public Source {
 public:
  Hdf5Source(const SourceOptions& o) : m_classes(o.classes) {
    m_format = "hdf5", m_path = o.path;
    h5_quiet();
    const H5CrashGuard guard(o.path);
    m_file = h5_open_read(o.path, false);  // a user's data file: checked only if ranksweep wrote it
    const auto dims = h5_dims(m_file, "/images", o.path);
    Dataset d;
    set_shape(d, std::vector<uint64_t>(dims.begin(), dims.end()), o.path);
    m_n = d.n, m_c = d.c, m_h = d.h, m_w = d.w;
    m_rank = int(dims.size());
    size_t tsize = 0;
    const H5T_class_t cls = h5_type_class(m_file, "/images", &tsize);
    m_u8 = cls == H5T_INTEGER && tsize == 1;
    if (!m_u8 && !(cls == H5T_FLOAT && tsize == 4)) fail("{}: /images must be uint8 or float32", o.path);
    {  // unfiltered data must be stored whole, in the file: a small file declaring millions of samples is
       // refused here (a damaged header may also claim more storage than the file has)
      H5 ds(H5Dopen2(m_file, "/images", H5P_DEFAULT), H5Dclose);
      H5 dcpl(H5Dget_create_plist(ds), H5Pclose);
      std::error_code ec;
      const double declared = double(m_n) * double(m_c) * m_h * m_w * double(tsize),
                   stored = double(H5Dget_storage_size(ds)), file = double(fs::file_size(o.path, ec));
      if (dcpl.id() >= 0 && H5Pget_nfilters(dcpl) == 0 && (stored < declared || (!ec && declared > file)))
        fail("{}: /images declares {} samples ({:.3g} MB) but the file stores {:.3g} MB of them", o.path, m_n,
             declared / 1e6, std::min(stored, ec ? stored : file) / 1e6);
    }
    if (h5_exists(m_file, "/labels")) {
      const auto ld = h5_dims(m_file, "/labels", o.path);
      if (ld.size() != 1) fail("{}: /labels needs 1 dimension, got {}", o.path, ld.size());
      if (int64_t(ld[0]) != m_n) fail("{}: {} labels for {} images", o.path, ld[0], m_n);
      size_t lsize = 0;  // a damaged type may claim gigabytes per element, which HDF5 would allocate to convert
      if (h5_type_class(m_file, "/labels", &lsize) != H5T_INTEGER || lsize < 1 || lsize > 8)
        fail("{}: /labels must be integers of 1 to 8 bytes", o.path);
      m_labels_path = o.path + ":/labels";
    }
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = empty_chunk(count);
    const size_t ss = d.sample_size();
    const H5CrashGuard guard(m_path, size_t(count) * ss * (m_u8 ? 1 : 4 + sizeof(float)));  // + a float copy
    std::vector<int32_t> lab(size_t(count), 0);
    if (m_u8) {
      std::vector<uint8_t> v(size_t(count) * ss);
      slab("/images", first, count, H5T_NATIVE_UINT8, v.data());
      d.u8 = std::move(v);
    } else {
      std::vector<float> v(size_t(count) * ss);
      slab("/images", first, count, H5T_NATIVE_FLOAT, v.data());
      for (float x : v)
        if (!std::isfinite(x))
          fail("{}: /images holds a non-finite value (samples {}..{})", m_path, first, first + count);
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

}  // namespace

std::unique_ptr<Source> open_hdf5(const SourceOptions& o) { return std::make_unique<Hdf5Source>(o); }

Dataset read_hdf5(const std::string& path, int64_t classes) {
  Hdf5Source s({path, "hdf5", "", classes});
  if (!s.has_labels()) fail("{}: no dataset /labels", path);
  return s.read(0, s.size());
}

}  // namespace rs
