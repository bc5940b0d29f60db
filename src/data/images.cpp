#include "data/images.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "error.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

// Larger images are refused before decoding: stb decodes the whole image
// (4 bytes a pixel) before it is resized, on every thread at once.
constexpr int64_t kMaxPixels = 100'000'000;

class ImageSource final : public Source {
 public:
  ImageSource(const SourceOptions& o) {
    m_format = "images", m_path = o.path;
    std::error_code ec;
    if (!fs::is_directory(o.path, ec)) fail("{}: --format images needs a directory of PNG/JPEG files", o.path);
    for (const auto& e : fs::directory_iterator(o.path, ec)) {
      const std::string x = file_extension(e.path().string());
      if (e.is_regular_file() && (x == ".png" || x == ".jpg" || x == ".jpeg"))
        m_names.push_back(e.path().filename().string());
    }
    std::sort(m_names.begin(), m_names.end());
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

}  // namespace rs
