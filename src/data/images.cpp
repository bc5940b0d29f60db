#include "data/images.h"

#include <stb_image_resize.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <png.h>
#include <turbojpeg.h>

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

// A decoded image: w x h pixels, interleaved, in the channels asked of the decoder (1 or 3).
struct Pixels {
  int w = 0, h = 0;
  std::vector<uint8_t> px;
};

// Why an image is refused, as the error line's tail after its name.
std::string undecodable(const std::string& why) { return "cannot decode image (" + why + ")"; }
std::string too_large(int64_t w, int64_t h) {
  return fmt::format("{}x{} pixels, more than the {} million an image may have", w, h, kMaxPixels / 1000000);
}

// Grey from RGB: (77 R + 150 G + 29 B) / 256, the ITU-R BT.601 luminance in 8-bit fixed point.
uint8_t luminance(int r, int g, int b) { return uint8_t((r * 77 + g * 150 + b * 29) >> 8); }

// JPEG through libjpeg-turbo (TurboJPEG), a decoder fuzzed upstream (fuzzing
// found 300-byte files on which stb_image asserted or read out of bounds).
// Grey is the file's luma. Warnings (extraneous bytes, a truncated scan) keep
// the image as decoded, as image viewers do; errors refuse it; progressive
// files are limited to 500 scans. Adobe CMYK/YCCK files become RGB as
// R = C K / 255 on the stored (inverted) values.
std::string decode_jpeg(const std::vector<uint8_t>& file, int c, Pixels& out) {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() { tjDestroy(h); }
  } t;
  if (!t.h) return undecodable("cannot start the JPEG decoder");
  int w = 0, h = 0, sub = 0, space = 0;
  auto* data = const_cast<unsigned char*>(file.data());
  const unsigned long size = file.size();
  if (tjDecompressHeader3(t.h, data, size, &w, &h, &sub, &space) != 0 &&
      (tjGetErrorCode(t.h) != TJERR_WARNING || w <= 0 || h <= 0))
    return undecodable(tjGetErrorStr2(t.h));
  if (int64_t(w) * h > kMaxPixels) return too_large(w, h);
  const bool cmyk = space == TJCS_CMYK || space == TJCS_YCCK;
  const int format = cmyk ? TJPF_CMYK : c == 1 ? TJPF_GRAY : TJPF_RGB, n = tjPixelSize[format];
  std::vector<uint8_t> px(size_t(w) * size_t(h) * size_t(n));
  if (tjDecompress2(t.h, data, size, px.data(), w, 0, h, format, TJFLAG_LIMITSCANS) != 0 &&
      tjGetErrorCode(t.h) != TJERR_WARNING)
    return undecodable(tjGetErrorStr2(t.h));
  out.w = w, out.h = h;
  if (!cmyk) {
    out.px = std::move(px);
    return "";
  }
  const auto mul = [](int x, int y) { return (x * y + 128 + ((x * y + 128) >> 8)) >> 8; };  // x y / 255
  out.px.resize(size_t(w) * size_t(h) * size_t(c));
  for (size_t i = 0; i < size_t(w) * size_t(h); ++i) {
    const uint8_t* q = &px[4 * i];
    const int r = mul(q[0], q[3]), g = mul(q[1], q[3]), b = mul(q[2], q[3]);
    if (c == 1)
      out.px[i] = luminance(r, g, b);
    else
      out.px[3 * i] = uint8_t(r), out.px[3 * i + 1] = uint8_t(g), out.px[3 * i + 2] = uint8_t(b);
  }
  return "";
}

// PNG through libpng, every kind made 8-bit RGB (palette expanded, 16-bit
// samples by their high byte, alpha and transparency dropped, grey repeated)
// and then reduced to `c` channels (grey by luminance()). libpng reads
// the image data as a stream and checks every chunk's CRC; a damaged file
// ends in png_error, which longjmps back here (only trivially destructible
// objects live between this frame and libpng's).
struct PngRead {
  const std::vector<uint8_t>* file;
  size_t at = 8;
  std::string why;
};

std::string decode_png(const std::vector<uint8_t>& file, int c, Pixels& out) {
  PngRead r{&file, 8, {}};
  png_structp png = png_create_read_struct(
      PNG_LIBPNG_VER_STRING, &r,
      [](png_structp p, png_const_charp msg) {
        static_cast<PngRead*>(png_get_error_ptr(p))->why = msg;
        png_longjmp(p, 1);
      },
      [](png_structp, png_const_charp) {});  // warnings (an odd colour profile) do not stop the image
  if (!png) return undecodable("cannot start the PNG decoder");
  png_infop info = png_create_info_struct(png);
  std::vector<uint8_t> rgb;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return undecodable("corrupt PNG: " + r.why);
  }
  if (!info) png_error(png, "out of memory");
  png_set_read_fn(png, &r, [](png_structp p, png_bytep to, png_size_t n) {
    auto* s = static_cast<PngRead*>(png_get_io_ptr(p));
    if (n > s->file->size() - s->at) png_error(p, "the file ends inside a chunk");
    std::memcpy(to, s->file->data() + s->at, n);
    s->at += n;
  });
  png_set_sig_bytes(png, 8);  // checked by the caller
  png_read_info(png, info);
  const png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (int64_t(w) * h > kMaxPixels) {
    r.why = too_large(w, h);
    png_destroy_read_struct(&png, &info, nullptr);
    return r.why;
  }
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  const int passes = png_set_interlace_handling(png);  // Adam7: every row once per pass, in place
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != size_t(w) * 3) png_error(png, "unexpected row size after conversion");
  rgb.resize(size_t(w) * h * 3);
  for (int pass = 0; pass < passes; ++pass)
    for (size_t y = 0; y < h; ++y) png_read_row(png, rgb.data() + y * size_t(w) * 3, nullptr);
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  out.w = int(w), out.h = int(h);
  if (c == 3) {
    out.px = std::move(rgb);
  } else {
    out.px.resize(size_t(w) * h);
    for (size_t i = 0; i < out.px.size(); ++i) out.px[i] = luminance(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
  }
  return "";
}

// Decodes `file` to c channels by its first bytes: why it cannot (undecodable(), too_large()), or "".
std::string decode(const std::string& file, int c, Pixels& out) {
  std::ifstream f(file, std::ios::binary);
  if (!f) return undecodable("cannot open it");
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(f), {}};
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) return decode_jpeg(bytes, c, out);
  if (bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0) return decode_png(bytes, c, out);
  return undecodable("not a PNG or JPEG file (by its first bytes)");
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
    std::string why;
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < count; ++i) {
      if (std::string e = convert(first + i, px.data() + size_t(i) * ss, hw); !e.empty()) {
#pragma omp critical
        if (bad < 0 || i < bad) bad = i, why = std::move(e);
      }
    }
    if (bad >= 0) fail("{}: {}", path_of(first + bad), why);
    d.u8 = std::move(px);
    d.labels = std::vector<int32_t>(size_t(count), 0);
    return d;
  }

 private:
  std::string path_of(int64_t k) const { return (fs::path(m_path) / m_names[size_t(k)]).string(); }

  // Decodes image k to the model's channels and size, planar (C, H, W): why it cannot, or "".
  std::string convert(int64_t k, uint8_t* out, size_t hw) const {
    Pixels p;
    if (std::string why = decode(path_of(k), m_c, p); !why.empty()) return why;
    std::vector<uint8_t> sized;
    const uint8_t* src = p.px.data();
    if (p.w != m_w || p.h != m_h) {
      sized.resize(hw * size_t(m_c));
      if (!stbir_resize_uint8(src, p.w, p.h, 0, sized.data(), m_w, m_h, 0, m_c)) return undecodable("cannot resize it");
      src = sized.data();
    }
    for (int c = 0; c < m_c; ++c)
      for (size_t i = 0; i < hw; ++i) out[size_t(c) * hw + i] = src[i * size_t(m_c) + size_t(c)];
    return "";
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
