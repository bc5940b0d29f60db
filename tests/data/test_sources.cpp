// Range reads of every inference input format against the whole-file
// readers, and a directory of images (decoding, conversion, errors).
#include <catch2/catch.hpp>
#include <stb_image_write.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <png.h>
#include <random>
#include <regex>
#include <turbojpeg.h>

#include "app/commands.h"
#include "data/cifar10.h"
#include "data/idx.h"
#include "data/source.h"
#include "error.h"
#include "helpers.h"
#include "io/h5.h"
#include "train/run_file.h"

using namespace rs;
using namespace rs::test;
using Catch::Matchers::Contains;

namespace {

void same_samples(const Dataset& whole, const Dataset& part, int64_t first, bool labels) {
  const size_t ss = whole.sample_size();
  REQUIRE(part.sample_size() == ss);
  for (int64_t i = 0; i < part.n; ++i) {
    INFO("sample " << first + i);
    if (labels) CHECK(part.labels[i] == whole.labels[first + i]);
    if (whole.is_u8())
      CHECK(std::equal(part.u8.data() + i * ss, part.u8.data() + (i + 1) * ss, whole.u8.data() + (first + i) * ss));
    else
      CHECK(std::equal(part.f32.data() + i * ss, part.f32.data() + (i + 1) * ss, whole.f32.data() + (first + i) * ss));
  }
}

// Random ranges, in increasing order as a rank reads them, plus one going back.
void check_ranges(Source& s, const Dataset& whole, bool labels) {
  REQUIRE(s.size() == whole.n);
  CHECK(s.c() == whole.c);
  CHECK(s.h() == whole.h);
  CHECK(s.w() == whole.w);
  CHECK(s.has_labels() == labels);
  std::mt19937 rng(5);
  int64_t at = 0;
  while (at < whole.n) {
    const int64_t cnt = std::min<int64_t>(whole.n - at, 1 + int64_t(rng() % 40));
    same_samples(whole, s.read(at, cnt), at, labels);
    at += cnt + int64_t(rng() % 3);
  }
  same_samples(whole, s.read(3, 5), 3, labels);  // backwards: reopens/rewinds
  CHECK(s.read(whole.n, 0).n == 0);
}

}  // namespace

TEST_CASE("inference inputs: range reads equal the whole-file readers", "[data]") {
  TempDir d("sources");
  std::vector<uint8_t> im, lb;
  toy_data(103, 6, 5, 3, 7, im, lb);
  const auto img = idx_bytes(8, {103, 6, 5}, im), lab = idx_bytes(8, {103}, lb);
  write_bytes(d / "t10k-images-idx3-ubyte.gz", img);  // gzip, labels found by name
  write_bytes(d / "t10k-labels-idx1-ubyte.gz", lab);
  write_bytes(d / "raw-images", img);
  write_bytes(d / "raw-labels", lab);
  const Dataset whole = read_idx(d / "raw-images", d / "raw-labels", 3);
  SECTION("IDX gzip, sibling labels") {
    auto s = open_source({d / "t10k-images-idx3-ubyte.gz", "auto", "", 3, 1, 1, 1});
    CHECK(s->format() == "idx");
    CHECK(s->labels_path() == d / "t10k-labels-idx1-ubyte.gz");
    check_ranges(*s, whole, true);
  }
  SECTION("IDX raw, --labels, and without labels") {
    auto s = open_source({d / "raw-images", "idx", d / "raw-labels", 3, 1, 1, 1});
    check_ranges(*s, whole, true);
    auto u = open_source({d / "raw-images", "idx", "", 3, 1, 1, 1});
    check_ranges(*u, whole, false);
  }
  SECTION("IDX: a label outside the model's classes, and a label count mismatch") {
    auto s = open_source({d / "raw-images", "idx", d / "raw-labels", 2, 1, 1, 1});
    REQUIRE_THROWS_WITH(s->read(0, 103), Contains("raw-labels") && Contains("outside [0, 2)"));
    write_bytes(d / "short-labels", idx_bytes(8, {5}, {0, 1, 2, 0, 1}));
    REQUIRE_THROWS_WITH(open_source({d / "raw-images", "idx", d / "short-labels", 3, 1, 1, 1}),
                        Contains("5 labels for 103 images"));
  }
  SECTION("HDF5 uint8 with labels; float32 without") {
    {
      H5 f = h5_create(d / "in.h5");
      h5_write(f, "/images", whole.u8.data(), {103, 1, 6, 5});
      std::vector<int32_t> l(whole.labels.begin(), whole.labels.end());
      h5_write(f, "/labels", l.data(), {103});
      H5 g = h5_create(d / "f.h5");
      std::vector<float> fx(whole.u8.begin(), whole.u8.end());
      h5_write(g, "/images", fx.data(), {103, 6, 5});
    }
    auto s = open_source({d / "in.h5", "auto", "", 3, 1, 1, 1});
    CHECK(s->format() == "hdf5");
    check_ranges(*s, whole, true);
    Dataset wf = whole;
    wf.f32 = std::vector<float>(whole.u8.begin(), whole.u8.end());
    auto f = open_source({d / "f.h5", "auto", "", 3, 1, 1, 1});
    check_ranges(*f, wf, false);
  }
  SECTION("CIFAR-10: a file, and a directory of files") {
    std::filesystem::create_directories(d / "cifar");
    std::vector<uint8_t> all;
    for (int file = 0; file < 2; ++file) {
      std::vector<uint8_t> b;
      for (int r = 0; r < 7 + file; ++r) {
        b.push_back(uint8_t((r + file) % 10));
        for (int k = 0; k < 3072; ++k) b.push_back(uint8_t(r * 31 + k * 7 + file));
      }
      write_bytes(d / ("cifar/data_batch_" + std::to_string(file + 1) + ".bin"), b);
    }
    const Dataset cw = read_cifar10(d / "cifar", true, 10);
    auto s = open_source({d / "cifar", "auto", "", 10, 1, 1, 1});
    CHECK(s->format() == "cifar10");
    check_ranges(*s, cw, true);
    auto one = open_source({d / "cifar/data_batch_1.bin", "auto", "", 10, 1, 1, 1});
    CHECK(one->size() == 7);
  }
}

TEST_CASE("inference inputs: a directory of images", "[data]") {
  TempDir d("images");
  // b.png: 16x12 RGB of one colour; a.png: 8x8 grey ramp; c.jpg: 4x4 RGBA; notes.txt is ignored.
  std::vector<uint8_t> rgb(16 * 12 * 3), grey(64), rgba(4 * 4 * 4, 200);
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i] = 200, rgb[i + 1] = 100, rgb[i + 2] = 50;
  for (int i = 0; i < 64; ++i) grey[size_t(i)] = uint8_t(i * 4);
  REQUIRE(stbi_write_png((d / "b.png").c_str(), 16, 12, 3, rgb.data(), 0));
  REQUIRE(stbi_write_png((d / "a.png").c_str(), 8, 8, 1, grey.data(), 0));
  REQUIRE(stbi_write_jpg((d / "c.jpg").c_str(), 4, 4, 4, rgba.data(), 95));
  std::ofstream(d / "notes.txt") << "not an image";

  auto g = open_source({d.path.string(), "auto", "", 10, 1, 8, 8});
  CHECK(g->format() == "images");
  CHECK(g->names() == std::vector<std::string>{"a.png", "b.png", "c.jpg"});
  CHECK_FALSE(g->has_labels());
  const Dataset x = g->read(0, 3);
  REQUIRE(x.n == 3);
  for (int i = 0; i < 64; ++i) CHECK(int(x.u8[size_t(i)]) == i * 4);  // same size: unchanged
  // Grey from RGB: stb's luminance (77 R + 150 G + 29 B) >> 8; a uniform image stays uniform when resized.
  const int lum = (200 * 77 + 100 * 150 + 50 * 29) >> 8;
  for (int i = 0; i < 64; ++i) CHECK(std::abs(int(x.u8[64 + size_t(i)]) - lum) <= 1);
  for (int i = 0; i < 64; ++i) CHECK(std::abs(int(x.u8[128 + size_t(i)]) - 200) <= 3);  // JPEG, alpha dropped

  auto c = open_source({d.path.string(), "images", "", 10, 3, 8, 8});
  const Dataset y = c->read(1, 1);  // planar RGB
  CHECK(std::abs(int(y.u8[0]) - 200) <= 1);
  CHECK(std::abs(int(y.u8[64]) - 100) <= 1);
  CHECK(std::abs(int(y.u8[128]) - 50) <= 1);

  std::ofstream(d / "b2.png") << "\x89PNG junk";
  auto bad = open_source({d.path.string(), "images", "", 10, 1, 8, 8});
  CHECK(bad->read(0, 2).n == 2);
  REQUIRE_THROWS_WITH(bad->read(1, 3), Contains("b2.png") && Contains("cannot decode image"));
  REQUIRE_THROWS_WITH(open_source({d / "notes.txt", "images", "", 10, 1, 8, 8}), Contains("needs a directory"));

  // A PNG chunk whose length runs past the end of the file (1.3 GB declared, 4 bytes present): an
  // error naming the file, without allocating what the chunk claims.
  std::filesystem::remove(d / "b2.png");
  std::vector<uint8_t> png;
  {
    std::ifstream f(d / "b.png", std::ios::binary);
    png.assign(std::istreambuf_iterator<char>(f), {});
  }
  const uint8_t huge[8] = {0x52, 0x00, 0x00, 0x00, 'I', 'D', 'A', 'T'};
  png.erase(png.end() - 12, png.end());  // IEND dropped: the chunk is the file's last
  png.insert(png.end(), huge, huge + 8);
  png.insert(png.end(), 4, uint8_t(0));
  write_bytes(d / "b3.png", png);
  auto cut = open_source({d.path.string(), "images", "", 10, 1, 8, 8});
  REQUIRE_THROWS_WITH(cut->read(0, 4), Contains("b3.png") && Contains("corrupt PNG"));
  // Only PNG and JPEG are decoded, whatever the name says (a PGM header under a .png name).
  std::filesystem::remove(d / "b3.png");
  std::ofstream(d / "b4.png") << "P5\xcb\xc1\xae\xfe\x7f\x00\x00?\x10";
  auto pgm = open_source({d.path.string(), "images", "", 10, 3, 16, 16});
  REQUIRE_THROWS_WITH(pgm->read(0, 4), Contains("b4.png") && Contains("not a PNG or JPEG file"));
}

// The kinds of PNG and JPEG a stb-made test file does not cover: 16-bit samples (their high byte),
// a palette with transparency (expanded, alpha dropped), an Adobe CMYK JPEG (R = C K / 255), an
// interlaced PNG, and two
// 300-byte JPEGs found by fuzzing that crashed stb_image (an assertion, an out-of-bounds read).
TEST_CASE("inference inputs: PNG and JPEG variants", "[data]") {
  TempDir d("image-kinds");
  const auto write_png = [&](const char* name, uint32_t format, const void* px, const void* colormap, int n) {
    png_image im{};
    im.version = PNG_IMAGE_VERSION, im.width = 4, im.height = 4, im.format = format, im.colormap_entries = n;
    REQUIRE(png_image_write_to_file(&im, (d / name).c_str(), 0, px, 0, colormap));
  };
  const std::vector<uint16_t> deep(16, 0xab12);
  write_png("a-16bit.png", PNG_FORMAT_LINEAR_Y, deep.data(), nullptr, 0);
  const uint8_t map[2][4] = {{10, 20, 30, 255}, {200, 150, 100, 0}};  // entry 1 transparent
  std::vector<uint8_t> index(16, 0);
  for (int i = 8; i < 16; ++i) index[size_t(i)] = 1;
  write_png("b-palette.png", PNG_FORMAT_RGBA | PNG_FORMAT_FLAG_COLORMAP, index.data(), map, 2);
  std::vector<uint8_t> ramp(16 * 3);  // an interlaced (Adam7) RGB PNG, pixel i = (10 i, i, 255 - i)
  for (size_t i = 0; i < 16; ++i)
    ramp[3 * i] = uint8_t(10 * i), ramp[3 * i + 1] = uint8_t(i), ramp[3 * i + 2] = uint8_t(255 - i);
  {
    FILE* f = std::fopen((d / "d-interlaced.png").c_str(), "wb");
    png_structp w = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(w);
    REQUIRE((f && w && info && !setjmp(png_jmpbuf(w))));
    png_init_io(w, f);
    png_set_IHDR(w, info, 4, 4, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_bytep rows[4];
    for (int y = 0; y < 4; ++y) rows[y] = &ramp[size_t(y) * 12];
    png_write_info(w, info);
    png_write_image(w, rows);
    png_write_end(w, nullptr);
    png_destroy_write_struct(&w, &info);
    std::fclose(f);
  }
  {
    tjhandle t = tjInitCompress();
    std::vector<uint8_t> cmyk(16 * 4);
    for (size_t i = 0; i < cmyk.size(); i += 4) cmyk[i] = 200, cmyk[i + 1] = 100, cmyk[i + 2] = 50, cmyk[i + 3] = 128;
    unsigned char* jpeg = nullptr;
    unsigned long size = 0;
    REQUIRE(tjCompress2(t, cmyk.data(), 4, 0, 4, TJPF_CMYK, &jpeg, &size, TJSAMP_444, 100, 0) == 0);
    write_bytes(d / "c-cmyk.jpg", std::vector<uint8_t>(jpeg, jpeg + size));
    tjFree(jpeg);
    tjDestroy(t);
  }
  auto s = open_source({d.path.string(), "images", "", 10, 3, 4, 4});
  const Dataset x = s->read(0, 4);
  for (int i = 0; i < 16; ++i) CHECK(int(x.u8[size_t(i)]) == 0xab);           // 16-bit grey: high byte, in R
  for (int i = 0; i < 16; ++i) CHECK(int(x.u8[size_t(2 * 16 + i)]) == 0xab);  // ... and B
  const uint8_t* pal = &x.u8[48];
  CHECK(int(pal[0]) == 10);    // R plane, first row: entry 0
  CHECK(int(pal[16]) == 20);   // G plane
  CHECK(int(pal[15]) == 200);  // R plane, last row: entry 1, its colour kept although transparent
  CHECK(int(pal[2 * 16 + 15]) == 100);
  const uint8_t* cm = &x.u8[96];
  CHECK(std::abs(int(cm[0]) - 200 * 128 / 255) <= 2);
  CHECK(std::abs(int(cm[16]) - 100 * 128 / 255) <= 2);
  CHECK(std::abs(int(cm[32]) - 50 * 128 / 255) <= 2);
  const uint8_t* il = &x.u8[144];
  for (size_t i = 0; i < 16; ++i) {
    CHECK(int(il[i]) == 10 * int(i));
    CHECK(int(il[16 + i]) == int(i));
    CHECK(int(il[32 + i]) == 255 - int(i));
  }

  TempDir e("stb-crashes");
  for (const char* f : {"jpeg-stb-assert.jpg", "jpeg-stb-segv.jpg"}) {
    std::filesystem::copy_file(std::filesystem::path(RS_SOURCE_DIR) / "tests/fixtures" / f, e / f);
    auto one = open_source({e.path.string(), "images", "", 10, 3, 16, 16});
    // Decoded (libjpeg-turbo fills what is missing) or refused by name: either is a clean answer.
    int64_t n = 0;
    try {
      n = one->read(0, 1).n;
    } catch (const UserError& err) {
      CHECK_THAT(err.what(), Contains(f) && Contains("cannot decode image"));
      n = -1;
    }
    CHECK(n != 0);
    std::filesystem::remove(e / f);
  }
}

// Under mpiexec with 1, 2 and 3 ranks: `infer` over all ranks writes the same
// predictions as `infer` on rank 0 alone, and its top-1 accuracy on the test
// set equals the test accuracy the run recorded.
