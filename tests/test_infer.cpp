// Batch inference: range readers against the whole-file readers, image
// decoding, and `infer` over 1, 2 and 3 ranks against one rank.
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
TEST_CASE("infer: all ranks write what one rank writes", "[infer]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  std::string dir;
  if (world.leader()) {
    d = std::make_unique<TempDir>("infer");
    dir = d->path.string();
    std::ofstream(*d / "cfg.toml") << toy_idx(*d, 400, 103, 8, 8, 3)  // 103: divisible by neither 2 nor 3
                                   << "validation = 50\n[model]\npreset = \"custom\"\nlayers = [{type = \"conv2d\", "
                                      "out = 4, kernel = 3}, {type = \"relu\"}, {type = \"maxpool\", kernel = 2}, "
                                      "{type = \"flatten\"}, {type = \"dense\", out = 3}]\n[train]\nepochs = 2\n"
                                      "lr = 0.05\nbatch_size = 20\n";
    TrainOptions t;
    t.config = *d / "cfg.toml", t.out = *d / "run";
    REQUIRE(train_command(t, Comm(MPI_COMM_SELF)) == 0);
    std::vector<uint8_t> im, lb;
    toy_data(103, 8, 8, 3, 2, im, lb);  // the test set again, as HDF5
    H5 f = h5_create(*d / "test.h5");
    h5_write(f, "/images", im.data(), {103, 8, 8});
    std::vector<int32_t> l(lb.begin(), lb.end());
    h5_write(f, "/labels", l.data(), {103});
    H5 tf = h5_create(*d / "tiny.h5");  // 2 samples, no labels: with 3 ranks, rank 0 or 1 gets nothing
    h5_write(tf, "/images", im.data(), {2, 8, 8});
  }
  world.bcast_string(dir);
  const double recorded =
      world.leader() ? read_run_file(dir + "/run/run.h5").history.cols.at("test_accuracy").back() : 0;
  for (const char* input : {"test-images.gz", "test.h5"}) {
    INFO("input " << input);
    InferOptions o;
    o.model = dir + "/run/run.h5";
    o.data = dir + "/" + input;
    if (std::string(input) == "test-images.gz") o.labels = dir + "/test-labels";
    o.top_k = 2, o.batch_size = 16;
    InferOptions all = o, one = o;
    all.out = dir + "/all-" + input + ".h5";
    one.out = dir + "/one-" + input + ".h5";
    REQUIRE(infer_command(all, world) == 0);
    if (!world.leader()) continue;
    REQUIRE(infer_command(one, Comm(MPI_COMM_SELF)) == 0);
    CHECK_FALSE(std::filesystem::exists(all.out + ".partial"));
    H5 a = h5_open_read(all.out), b = h5_open_read(one.out);
    REQUIRE(h5_dims(a, "/labels", all.out) == std::vector<hsize_t>{103, 2});
    std::vector<int32_t> la(206), lb(206);
    std::vector<float> pa(206), pb(206);
    std::vector<int64_t> ia(103), ib(103);
    h5_read(a, "/labels", la.data(), all.out), h5_read(b, "/labels", lb.data(), one.out);
    h5_read(a, "/probabilities", pa.data(), all.out), h5_read(b, "/probabilities", pb.data(), one.out);
    h5_read(a, "/index", ia.data(), all.out), h5_read(b, "/index", ib.data(), one.out);
    CHECK(la == lb);
    CHECK(ia == ib);
    for (int64_t i = 0; i < 103; ++i) CHECK(ia[size_t(i)] == i);
    double diff = 0;
    for (size_t i = 0; i < pa.size(); ++i) diff = std::max(diff, double(std::abs(pa[i] - pb[i])));
    CHECK(diff < 1e-5);
    for (size_t i = 0; i < 103; ++i) {
      CHECK(pa[2 * i] >= pa[2 * i + 1]);  // sorted, top-1 first
      CHECK(pa[2 * i] + pa[2 * i + 1] <= 1.0f + 1e-6f);
      CHECK(la[2 * i] != la[2 * i + 1]);
    }
    std::vector<int32_t> truth(103);
    h5_read(a, "/true_labels", truth.data(), all.out);
    std::vector<uint8_t> im, lab;
    toy_data(103, 8, 8, 3, 2, im, lab);
    CHECK(truth == std::vector<int32_t>(lab.begin(), lab.end()));
    CHECK(h5_attr_string(a, "/", "format", all.out) == "ranksweep-predictions");
    CHECK(h5_attr_doubles(a, "/", "top1_accuracy", all.out).at(0) == Approx(recorded).margin(1e-9));
    CHECK(h5_attr_doubles(a, "/", "topk_accuracy", all.out).at(0) >= recorded);
    // never overwritten: a second run fails and leaves the file as it was
    REQUIRE_THROWS_WITH(infer_command(one, Comm(MPI_COMM_SELF)), Contains("already exists"));
    CHECK(std::filesystem::exists(one.out));
  }
  // Fewer samples than ranks: empty slices write nothing and wait for no one.
  InferOptions tiny;
  tiny.model = dir + "/run/run.h5", tiny.data = dir + "/tiny.h5", tiny.out = dir + "/tiny-pred.h5", tiny.top_k = 2;
  REQUIRE(infer_command(tiny, world) == 0);
  if (world.leader()) {
    const std::string ref = dir + "/one-test.h5.h5";
    H5 a = h5_open_read(tiny.out), b = h5_open_read(ref);
    REQUIRE(h5_dims(a, "/labels", tiny.out) == std::vector<hsize_t>{2, 2});
    std::vector<int32_t> la(4), lb(206);
    h5_read(a, "/labels", la.data(), tiny.out), h5_read(b, "/labels", lb.data(), ref);
    CHECK(la == std::vector<int32_t>(lb.begin(), lb.begin() + 4));
    CHECK_FALSE(h5_exists(a, "/true_labels"));
    CHECK_FALSE(h5_has_attr(a, "/", "top1_accuracy"));
  }
}

TEST_CASE("training from class folders: labels, class names in the run file and in infer's output", "[infer]") {
  if (!Comm(MPI_COMM_WORLD).leader()) return;
  TempDir d("folders");
  // Three classes told apart by colour (class k: channel k bright), in PNG and JPEG, of varied sizes.
  const std::vector<std::string> names{"cat", "dog", "owl"};
  std::mt19937 rng(4);
  auto draw = [&](const std::filesystem::path& file, int k) {
    const int w = 10 + int(rng() % 9), h = 8 + int(rng() % 7);
    std::vector<uint8_t> px(size_t(w) * h * 3);
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(int(i % 3) == k ? 180 + rng() % 70 : rng() % 90);
    std::filesystem::create_directories(file.parent_path());
    REQUIRE((file.extension() == ".png" ? stbi_write_png(file.c_str(), w, h, 3, px.data(), 0)
                                        : stbi_write_jpg(file.c_str(), w, h, 3, px.data(), 95)));
  };
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 40; ++i) {
      draw(d.path / "train" / names[k] / fmt::format("{:02}.{}", i, i % 4 ? "png" : "jpg"), k);
      if (i < 8) draw(d.path / "test" / names[k] / fmt::format("t{}.png", i), k);
    }
  for (int k = 0; k < 3; ++k) draw(d.path / "new" / fmt::format("{}-{}.png", k, names[k]), k);  // a flat folder for infer
  const std::string data = fmt::format(
      "[data]\nformat = \"images\"\npath = \"{}\"\ntest_path = \"{}\"\nclasses = 3\nchannels = 3\n"
      "image_size = [6, 6]\nvalidation = 12\n[model]\npreset = \"custom\"\nlayers = [{{type = \"flatten\"}}, "
      "{{type = \"dense\", out = 3}}]\n[train]\nepochs = 8\nlr = 0.05\nbatch_size = 8\n",
      (d.path / "train").string(), (d.path / "test").string());
  std::ofstream(d.path / "cfg.toml") << data;
  TrainOptions t;
  t.config = d.path / "cfg.toml", t.out = d.path / "run";
  REQUIRE(train_command(t, Comm(MPI_COMM_SELF)) == 0);
  const RunFile rf = read_run_file(d.path / "run" / "run.h5");
  CHECK(rf.class_names == names);
  CHECK(rf.c == 3);
  CHECK(rf.h == 6);
  CHECK(rf.w == 6);
  CHECK(rf.history.cols.at("test_accuracy").back() > 0.9);  // 24 test images from class folders

  InferOptions o;
  o.model = d.path / "run" / "run.h5", o.data = d.path / "new", o.out = d.path / "p.h5", o.top_k = 1;
  REQUIRE(infer_command(o, Comm(MPI_COMM_SELF)) == 0);
  H5 p = h5_open_read(o.out);
  CHECK(h5_attr_names(p, "/", "class_names", o.out) == names);
  std::vector<int32_t> labels(3);
  h5_read(p, "/labels", labels.data(), o.out);
  CHECK(labels == std::vector<int32_t>{0, 1, 2});

  // Class count and folders must agree; a test folder must be a training class.
  std::ofstream(d.path / "four.toml") << std::regex_replace(data, std::regex("classes = 3"), "classes = 4");
  t.config = d.path / "four.toml", t.out = d.path / "r4";
  REQUIRE_THROWS_WITH(train_command(t, Comm(MPI_COMM_SELF)),
                      Contains("3 class directories (cat, dog, owl), but data.classes = 4: set data.classes = 3"));
  draw(d.path / "test" / "emu" / "x.png", 0);
  t.config = d.path / "cfg.toml", t.out = d.path / "r5";
  REQUIRE_THROWS_WITH(train_command(t, Comm(MPI_COMM_SELF)),
                      Contains("class directory \"emu\" is not one of the training classes (cat, dog, owl)"));
}
