// Range reads of every inference input format against the whole-file
// readers, and a directory of images (decoding, conversion, errors).
#include <catch2/catch.hpp>
#include <stb_image_write.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

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

  // A PNG chunk whose length runs past the end of the file (found by fuzzing: stb_image allocated
  // 2 GB for it before reading): refused by name before stb sees it.
  std::filesystem::remove(d / "b2.png");
  std::vector<uint8_t> png;
  {
    std::ifstream f(d / "b.png", std::ios::binary);
    png.assign(std::istreambuf_iterator<char>(f), {});
  }
  const uint8_t huge[8] = {0x52, 0x00, 0x00, 0x00, 'I', 'D', 'A', 'T'};  // 1.3 GB declared, 4 bytes present
  png.erase(png.end() - 12, png.end());  // IEND dropped: the chunk is the file's last
  png.insert(png.end(), huge, huge + 8);
  png.insert(png.end(), 4, uint8_t(0));
  write_bytes(d / "b3.png", png);
  auto cut = open_source({d.path.string(), "images", "", 10, 1, 8, 8});
  REQUIRE_THROWS_WITH(cut->read(0, 4), Contains("b3.png") && Contains("a chunk runs past the end of the file"));
  // Other formats stb_image would decode by content are not read (a PGM header under a .png name:
  // found by fuzzing, it made stb_image_resize assert).
  std::filesystem::remove(d / "b3.png");
  std::ofstream(d / "b4.png") << "P5\xcb\xc1\xae\xfe\x7f\x00\x00?\x10";
  auto pgm = open_source({d.path.string(), "images", "", 10, 3, 16, 16});
  REQUIRE_THROWS_WITH(pgm->read(0, 4), Contains("b4.png") && Contains("not a PNG or JPEG file"));
}

// Under mpiexec with 1, 2 and 3 ranks: `infer` over all ranks writes the same
// predictions as `infer` on rank 0 alone, and its top-1 accuracy on the test
// set equals the test accuracy the run recorded.
