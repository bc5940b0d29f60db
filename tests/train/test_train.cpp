// End to end on toy data the test writes: training learns, the run file has
// DESIGN's layout, runs are never overwritten, and save/resume continues with
// bit-identical losses and parameters.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <fstream>
#include <set>

#include "app/commands.h"
#include "error.h"
#include "helpers.h"
#include "io/h5.h"
#include "io/output_dir.h"
#include "train/run_file.h"
#include "mpi/bcast_data.h"
#include "train/trainer.h"

using namespace rs;
using namespace rs::test;
using Catch::Matchers::Contains;

namespace {

std::string write_config(const TempDir& d, const std::string& body) {
  const std::string path = d / "cfg.toml";
  std::ofstream(path) << toy_idx(d, 600, 200, 8, 8, 3) << "validation = 100\n" << body;
  return path;
}

int train(const std::string& cfg, const std::string& out, std::vector<std::string> sets = {}) {
  TrainOptions o;
  o.config = cfg, o.out = out, o.sets = std::move(sets);
  return train_command(o, Comm(MPI_COMM_SELF));
}

std::vector<float> read_all_params(const std::string& run) {
  H5 f = h5_open_read(run);
  std::vector<float> all;
  for (const char* t :
       {"/model/dense1/weight", "/model/dense1/bias", "/model/dense2/weight", "/model/dense2/bias", "/model/bn1/weight",
        "/model/bn1/running_mean", "/model/bn1/running_var", "/model/bn2/running_var"}) {
    if (!h5_exists(f, t)) continue;
    size_t n = 1;
    for (hsize_t x : h5_dims(f, t, run)) n *= x;
    std::vector<float> v(n);
    h5_read(f, t, v.data(), run);
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

const char* kMlp = "[model]\nhidden = [32]\ndropout = 0.2\n[train]\nepochs = 3\nbatch_size = 32\nlr = 0.05\n";
const char* kCnnAdam = R"([model]
layers = [ { type = "conv2d", out = 4, kernel = 3, padding = 1 }, { type = "relu" },
           { type = "maxpool", kernel = 2 }, { type = "flatten" }, { type = "dense", out = 16 },
           { type = "relu" }, { type = "dropout", p = 0.3 }, { type = "dense", out = 3 } ]
[train]
epochs = 3
batch_size = 25
optimizer = "adamw"
lr = 0.003
schedule = "cosine"
warmup_epochs = 0.5
)";
// Batch norm after a convolution and a dense layer, augmented batches.
const char* kCnnBn = R"(crop_padding = 1
flip = true
[model]
layers = [ { type = "conv2d", out = 4, kernel = 3, padding = 1 }, { type = "batchnorm" }, { type = "relu" },
           { type = "maxpool", kernel = 2 }, { type = "flatten" }, { type = "dense", out = 16 },
           { type = "batchnorm" }, { type = "relu" }, { type = "dense", out = 3 } ]
[train]
epochs = 3
batch_size = 25
optimizer = "adam"
lr = 0.003
)";

}  // namespace

TEST_CASE("training learns the toy problem and writes DESIGN's run file", "[train]") {
  TempDir d("train_learn");
  const std::string cfg = write_config(d, kMlp);
  REQUIRE(train(cfg, d / "run") == 0);
  const RunFile rf = read_run_file(d / "run/run.h5");
  CHECK(rf.epochs_done == 3);
  CHECK((rf.c == 1 && rf.h == 8 && rf.w == 8 && rf.classes == 3));
  const auto& h = rf.history.cols;
  for (const char* k :
       {"epoch", "train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "seconds", "images_per_second"})
    REQUIRE(h.count(k));
  CHECK(h.at("test_accuracy").back() > 0.85);  // chance is 0.33
  CHECK(h.at("train_loss").back() < h.at("train_loss").front());
  CHECK(rf.config_text.find("hidden = [ 32 ]") != std::string::npos);
  H5 f = h5_open_read(d / "run/run.h5");
  CHECK(h5_dims(f, "/model/dense1/weight", "") == std::vector<hsize_t>{32, 64});
  CHECK(h5_dims(f, "/optimizer/momentum/dense2/bias", "") == std::vector<hsize_t>{3});
  CHECK(h5_attr_string(f, "/", "git_sha", "").size() > 0);
  CHECK(!std::filesystem::exists(d / "run/run.h5.tmp"));
}

TEST_CASE("an existing run file is never overwritten", "[train]") {
  TempDir d("train_exists");
  const std::string cfg = write_config(d, kMlp);
  REQUIRE(train(cfg, d / "run", {"train.epochs=1"}) == 0);
  const auto before = std::filesystem::last_write_time(d / "run/run.h5");
  REQUIRE_THROWS_WITH(train(cfg, d / "run", {"train.epochs=1"}), Contains("run.h5: exists") && Contains("--resume"));
  CHECK(std::filesystem::last_write_time(d / "run/run.h5") == before);
}

TEST_CASE("resume continues with bit-identical losses and parameters", "[train]") {
  for (const char* body : {kMlp, kCnnAdam, kCnnBn}) {
    DYNAMIC_SECTION((body == kMlp       ? "mlp, sgd momentum, dropout"
                     : body == kCnnAdam ? "cnn, adamw, cosine, warmup, dropout"
                                        : "cnn, batch norm, augmentation")) {
      TempDir d("train_resume");
      const std::string cfg = write_config(d, body);
      REQUIRE(train(cfg, d / "full") == 0);
      TrainOptions o;
      o.config = cfg, o.out = d / "part", o.stop_after = 2;  // as if the job ended after epoch 2
      REQUIRE(train_command(o, Comm(MPI_COMM_SELF)) == 0);
      REQUIRE(read_run_file(d / "part/run.h5").epochs_done == 2);
      o = TrainOptions{};
      o.resume = d / "part";
      REQUIRE(train_command(o, Comm(MPI_COMM_SELF)) == 0);
      const RunFile a = read_run_file(d / "full/run.h5"), b = read_run_file(d / "part/run.h5");
      REQUIRE(b.epochs_done == 3);
      for (const char* k : {"train_loss", "train_accuracy", "val_accuracy", "test_loss"})
        CHECK(a.history.cols.at(k) == b.history.cols.at(k));  // exact, not approximate
      CHECK(a.optimizer_steps == b.optimizer_steps);
      CHECK(read_all_params(d / "full/run.h5") == read_all_params(d / "part/run.h5"));
      if (body == kCnnBn) {  // the running statistics are in the file, moved from their start (0 and 1)
        H5 f = h5_open_read(d / "part/run.h5");
        std::vector<float> mean(4), var(16);
        h5_read(f, "/model/bn1/running_mean", mean.data(), "");
        h5_read(f, "/model/bn2/running_var", var.data(), "");
        CHECK(mean != std::vector<float>(4, 0.f));
        CHECK(var != std::vector<float>(16, 1.f));
        CHECK(a.history.cols.at("test_accuracy").back() > 0.6);  // chance is 0.33
      }
    }
  }
}

TEST_CASE("resume errors: missing run, not a run file", "[train]") {
  TempDir d("train_resume_bad");
  TrainOptions o;
  o.resume = d / "nothing";
  REQUIRE_THROWS_WITH(train_command(o, Comm(MPI_COMM_SELF)), Contains("run.h5: file not found"));
  std::filesystem::create_directories(d / "junk");
  write_bytes(d / "junk/run.h5", std::vector<uint8_t>(64, 7));
  o.resume = d / "junk";
  REQUIRE_THROWS_WITH(train_command(o, Comm(MPI_COMM_SELF)), Contains("not an HDF5 file"));
  { H5 f = h5_create(d / "junk/run.h5"); }
  REQUIRE_THROWS_WITH(train_command(o, Comm(MPI_COMM_SELF)), Contains("not a ranksweep run file"));
}

TEST_CASE("a diverging run stops with status 1 and writes no bad epoch", "[train]") {
  TempDir d("train_diverge");
  const std::string cfg = write_config(d, "[model]\nhidden = [32]\n[train]\nepochs = 2\nlr = 1e5\n");
  CHECK(train(cfg, d / "run") == 1);
  CHECK(!std::filesystem::exists(d / "run/run.h5"));
}

TEST_CASE("outputs: a lock is exclusive, names its holder, and is gone when released", "[train]") {
  TempDir d("output_lock");
  const std::string path = d / "out.lock";
  {
    OutputLock a(path, "out");
    CHECK(fs::exists(path));
    // a second holder (another open file description, as another process would have) is refused
    REQUIRE_THROWS_AS(OutputLock(path, "out"), UserError);
    REQUIRE_THROWS_WITH(OutputLock(path, "out"),
                        Contains("out: in use by another ranksweep run (pid " + std::to_string(::getpid())));
  }
  CHECK_FALSE(fs::exists(path));
  OutputLock again(path, "out");  // free again
  REQUIRE_THROWS_WITH(OutputLock(d / "no/such/dir/x.lock", "x"), Contains("x: cannot write there"));
}

TEST_CASE("outputs: default directories started in the same second never collide", "[train]") {
  TempDir d("default_dirs");
  const fs::path here = fs::current_path();
  fs::current_path(d.path);
  std::set<std::string> dirs;
  for (int i = 0; i < 5; ++i) dirs.insert(default_out_dir("inputs/x.toml"));
  fs::current_path(here);
  CHECK(dirs.size() == 5);
  for (const std::string& s : dirs) CHECK(fs::is_directory(d.path / s));
}

TEST_CASE("a last batch of one sample is left out where batch norm normalises over the batch", "[train]") {
  TempDir d("bn_last");
  const Comm self(MPI_COMM_SELF);
  auto steps = [&](const std::string& body, int64_t validation) {
    const std::string path = d / "cfg.toml";
    std::ofstream(path) << toy_idx(d, 600, 200, 8, 8, 3) << "validation = " << validation << "\n" << body;
    const Config cfg = load_config(path, {"train.batch_size=6", "train.epochs=1"});
    auto be = make_cpu_backend();
    const Data data = load_and_bcast_data(self, cfg.data, uint64_t(cfg.train.seed));
    Trainer tr(cfg, data, *be, self);
    tr.init();
    tr.run_epoch();
    const double loss = tr.history().cols.at("train_loss").back();
    CHECK(std::isfinite(loss));
    return tr.steps_per_epoch();
  };
  CHECK(steps(kCnnBn, 101) == 83);  // 499 = 83 x 6 + 1: the 1-sample batch left out (bn after dense)
  CHECK(steps(kCnnBn, 100) == 84);  // 500 = 83 x 6 + 2: kept
  CHECK(steps(kMlp, 101) == 84);    // no batch norm: every sample
}
