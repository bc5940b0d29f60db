// Batch inference: `infer` over 1, 2 and 3 ranks against one rank, and
// training from class folders through to infer's output. (The range readers
// it uses are tested in tests/data/test_sources.cpp.)
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
