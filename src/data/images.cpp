#include "data/images.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "error.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

// Larger images are refused before decoding: stb decodes the whole image
// (4 bytes a pixel) before it is resized, on every thread at once.
constexpr int64_t kMaxPixels = 100'000'000;

// Entries of `dir` in name order: image files, or (dirs) subdirectories.
// Hidden entries (".name": version control, editors' and macOS's "._" files)
// are not data; an entry whose type cannot be read (a symbolic link loop, a
// dangling link) is an error naming it.
std::vector<std::string> list_dir(const std::string& dir, bool dirs) {
  std::vector<std::string> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(".")) continue;
    std::error_code type_ec;
    const fs::file_status st = e.status(type_ec);
    if (type_ec) fail("{}: cannot read: {}", e.path().string(), type_ec.message());
    const std::string x = file_extension(name);
    if (dirs ? fs::is_directory(st) : fs::is_regular_file(st) && (x == ".png" || x == ".jpg" || x == ".jpeg"))
      v.push_back(name);
  }
  if (ec) fail("{}: cannot list the directory: {}", dir, ec.message());
  std::sort(v.begin(), v.end());
  return v;
}

// Why stb_image must not see the file ("" when it may), from one read of its
// head and, for a PNG, of its chunk headers:
// - stb_image decodes a dozen formats by content (PNM, PSD, HDR, ...: fuzzing
//   found a 9-byte "P5" file under a .png name that made stb_image_resize
//   assert); only PNG and JPEG reach it;
// - stb_image sizes its buffer for a PNG's image data from a chunk's declared
//   length before reading it (fuzzing: a 518-byte file made it allocate 2 GB):
//   a chunk running past the end of the file is refused first.
std::string refuse(const std::string& file) {
  std::ifstream f(file, std::ios::binary);
  unsigned char m[8] = {};
  f.read(reinterpret_cast<char*>(m), 8);
  if (f.gcount() >= 3 && m[0] == 0xff && m[1] == 0xd8 && m[2] == 0xff) return "";  // JPEG
  if (f.gcount() < 8 || std::memcmp(m, "\x89PNG\r\n\x1a\n", 8) != 0)
    return "not a PNG or JPEG file (by its first bytes)";
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  for (uint64_t at = 8; f.read(reinterpret_cast<char*>(m), 8);) {  // chunk: length, type, data, CRC
    const uint64_t len = uint64_t(m[0]) << 24 | uint64_t(m[1]) << 16 | uint64_t(m[2]) << 8 | m[3];
    if (at + 12 + len > size) return "corrupt PNG: a chunk runs past the end of the file";
    if (std::memcmp(m + 4, "IEND", 4) == 0) break;
    at += 12 + len;
    f.seekg(std::streamoff(at));
  }
  return "";  // without IEND: stb reports it
}

class ImageSource final : public Source {
 public:
  // The images of o.path (names: paths relative to it; empty: the directory's images).
  ImageSource(const SourceOptions& o, std::vector<std::string> names = {}) {
    m_format = "images", m_path = o.path;
    std::error_code ec;
    if (!fs::is_directory(o.path, ec)) fail("{}: --format images needs a directory of PNG/JPEG files", o.path);
    m_names = names.empty() ? list_dir(o.path, false) : std::move(names);
    if (m_names.empty()) fail("{}: no .png/.jpg/.jpeg files in the directory", o.path);
    if (o.c != 1 && o.c != 3) fail("{}: images convert to 1 or 3 channels; the model takes {}", o.path, o.c);
    m_n = int64_t(m_names.size());
    m_c = o.c, m_h = o.h, m_w = o.w;
  }
  Dataset read(int64_t first, int64_t count) override {
    Dataset d = empty_chunk(count);
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
      int w = 0, h = 0, n = 0;
      if (const std::string why = refuse(file); !why.empty()) fail("{}: cannot decode image ({})", file, why);
      if (stbi_info(file.c_str(), &w, &h, &n) && int64_t(w) * h > kMaxPixels)
        fail("{}: {}x{} pixels, more than the {} million an image may have", file, w, h, kMaxPixels / 1000000);
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
    if (!refuse(file).empty()) return false;  // reported by read() with the reason
    if (!stbi_info(file.c_str(), &w, &h, &n)) return false;
    if (int64_t(w) * h > kMaxPixels) return false;  // reported by read() with the size
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

std::unique_ptr<Source> open_images(const SourceOptions& o) { return std::make_unique<ImageSource>(o); }

Dataset read_image_folders(const std::string& path, int c, int h, int w, int64_t classes,
                           std::vector<std::string>& class_names) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    fail("{}: data.format = \"images\" needs a directory with one subdirectory of images per class", path);
  const std::vector<std::string> dirs = list_dir(path, true);
  if (dirs.empty()) fail("{}: no class subdirectories (one per class, holding its PNG/JPEG images)", path);
  const bool test = !class_names.empty();
  if (!test) {
    if (int64_t(dirs.size()) != classes)
      fail("{}: {} class directories ({}), but data.classes = {}: set data.classes = {}", path, dirs.size(),
           fmt::join(dirs, ", "), classes, dirs.size());
    class_names = dirs;
  }
  std::vector<std::string> names;
  std::vector<int32_t> labels;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string& d = dirs[i];
    const auto k = std::find(class_names.begin(), class_names.end(), d);
    if (k == class_names.end())
      fail("{}: class directory \"{}\" is not one of the training classes ({})", path, d, fmt::join(class_names, ", "));
    for (size_t j = 0; j < i; ++j)  // a link to another class would give its images two labels
      if (fs::equivalent(fs::path(path) / dirs[j], fs::path(path) / d, ec))
        fail("{}: class directories \"{}\" and \"{}\" are the same directory (a link?)", path, dirs[j], d);
    const std::vector<std::string> files = list_dir((fs::path(path) / d).string(), false);
    if (files.empty() && !test)
      fail("{}: no .png/.jpg/.jpeg files: a class needs training images", (fs::path(path) / d).string());
    for (const std::string& f : files) {
      names.push_back((fs::path(d) / f).string());
      labels.push_back(int32_t(k - class_names.begin()));
    }
  }
  if (names.empty()) fail("{}: no .png/.jpg/.jpeg files in its class directories", path);
  ImageSource src({path, "images", "", classes, c, h, w}, std::move(names));
  Dataset out = src.read(0, src.size());
  out.labels = Array<int32_t>(std::move(labels));
  out.source = path;
  return out;
}

}  // namespace rs
