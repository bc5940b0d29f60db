// Config parsing and validation: every error names the file and key path.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "error.h"
#include "helpers.h"

using namespace rs;
using namespace rs::test;
using Catch::Matchers::Contains;

namespace {
Config parse(const std::string& text, const std::vector<std::string>& sets = {}) {
  return parse_config_text(text, "cfg.toml", sets);
}
}  // namespace

TEST_CASE("defaults and presets", "[config]") {
  const Config c = parse("");
  CHECK(c.data.format == "idx");
  CHECK(c.data.train_images == "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
  CHECK(c.model.preset == "mlp");
  // flatten, (dense, relu) x 2, dense to classes
  REQUIRE(c.model.layers.size() == 6);
  CHECK(c.model.layers[1].name == "dense1");
  CHECK(c.model.layers[5].out == -1);
  const Config cnn = parse("[model]\npreset = \"tf-mnist-cnn\"\n");
  std::vector<std::string> types;
  for (const auto& l : cnn.model.layers) types.push_back(l.type);
  CHECK(types == std::vector<std::string>{"conv2d", "relu", "maxpool", "conv2d", "relu", "maxpool", "flatten", "dense",
                                          "relu", "dropout", "dense"});
  CHECK(cnn.model.layers[0].out == 32);
  CHECK(cnn.model.layers[3].out == 64);
  CHECK(cnn.model.layers[9].p == 0.5);
  // batch norm after each convolution and the hidden dense layer; an mlp by width and depth
  const Config bn = parse("[model]\npreset = \"tf-mnist-cnn\"\nbatch_norm = true\n");
  types.clear();
  for (const auto& l : bn.model.layers) types.push_back(l.type);
  CHECK(types == std::vector<std::string>{"conv2d", "batchnorm", "relu", "maxpool", "conv2d", "batchnorm", "relu",
                                          "maxpool", "flatten", "dense", "batchnorm", "relu", "dropout", "dense"});
  CHECK(bn.model.layers[1].name == "bn1");
  const Config wd = parse("[model]\nwidth = 96\ndepth = 3\nbatch_norm = true\n");
  CHECK(wd.model.hidden == std::vector<int64_t>{96, 96, 96});
  CHECK(wd.model.layers.size() == 1 + 3 * 3 + 1);
  CHECK_THROWS_WITH(parse("[model]\nwidth = 96\nhidden = [8]\n"), Contains("not both"));
  CHECK(parse("[data]\ncrop_padding = 2\nflip = true\n").data.crop_padding == 2);
  CHECK_THROWS_WITH(parse("[data]\ncrop_padding = -1\n"), Contains("crop_padding"));
}

TEST_CASE("custom layer lists", "[config]") {
  const Config c = parse(R"([model]
layers = [ { type = "conv2d", out = 8, kernel = 3, padding = 1 }, { type = "tanh" },
           { type = "maxpool", kernel = 2 }, { type = "flatten" }, { type = "dense", out = 10, name = "head" } ]
)");
  REQUIRE(c.model.layers.size() == 5);
  CHECK(c.model.preset == "custom");
  CHECK(c.model.layers[2].stride == 2);
  CHECK(c.model.layers[4].name == "head");
  REQUIRE_THROWS_WITH(parse("[model]\nlayers = [ { type = \"conv2d\", kernel = 3 } ]\n"),
                      Contains("model.layers[0].out") && Contains("required"));
  REQUIRE_THROWS_WITH(parse("[model]\nlayers = [ { type = \"dense\", out = 3, size = 2 } ]\n"),
                      Contains("model.layers[0].size: unknown key"));
  REQUIRE_THROWS_WITH(parse("[model]\nlayers = [ { type = \"bogus\" } ]\n"), Contains("model.layers[0].type"));
}

TEST_CASE("errors name the key path", "[config]") {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{
           {"[train]\nepocs = 3\n", "cfg.toml:2: train.epocs: unknown key"},
           {"[trian]\nepochs = 3\n", "trian: unknown key"},
           {"[train]\nepochs = \"ten\"\n", "train.epochs: expected an integer, got string"},
           {"[train]\nlr = -0.1\n", "train.lr: -0.1 is out of range"},
           {"[train]\nlr = 0\n", "train.lr: 0 is out of range (0"},
           {"[train]\nbatch_size = 0\n", "train.batch_size: 0 is out of range"},
           {"[train]\nlabel_smoothing = 1.0\n", "train.label_smoothing: 1 is out of range"},
           {"[train]\ncudnn_workspace_mb = -1\n", "train.cudnn_workspace_mb: -1 is out of range"},
           {"[train]\noptimizer = \"lbfgs\"\n", "train.optimizer: \"lbfgs\" is not one of sgd | adam | adamw"},
           {"[model]\nhidden = [512, -3]\n", "model.hidden[1]: -3 is out of range"},
           {"[model]\nhidden = 512\n", "model.hidden: expected an array of integers"},
           {"[model]\ndropout = 1.5\n", "model.dropout: 1.5 is out of range"},
           {"[data]\npath = \"x.h5\"\n", "data.path: only cifar10, hdf5 and images data take one"},
           {"[data]\nformat = \"png\"\n", "data.format"},
           {"[data]\nformat = \"hdf5\"\n", "data.path: hdf5 data needs a path"},
           {"train = 3\n", "train: expected a table"},
           {"[train\n", "cfg.toml:1:"},
       }) {
    DYNAMIC_SECTION(c.expect) {
      REQUIRE_THROWS_AS(parse(c.text), UserError);
      REQUIRE_THROWS_WITH(parse(c.text), Contains(c.expect));
    }
  }
}

TEST_CASE("--set overrides with dotted keys", "[config]") {
  const Config c = parse("[train]\nepochs = 10\n", {"train.epochs=3", "model.hidden=[64, 32]", "train.optimizer=adam",
                                                    "train.lr=1e-3", "data.validation=100"});
  CHECK(c.train.epochs == 3);
  CHECK(c.model.hidden == std::vector<int64_t>{64, 32});
  CHECK(c.train.optimizer == OptimizerKind::adam);
  CHECK(c.train.lr == 1e-3);
  CHECK(c.data.validation == 100);
  // the effective config is kept as TOML and parses back to the same values
  const Config again = parse(c.text);
  CHECK(again.train.epochs == 3);
  CHECK(again.model.hidden == c.model.hidden);
  REQUIRE_THROWS_WITH(parse("", {"train.epochz=3"}), Contains("train.epochz: unknown key"));
  REQUIRE_THROWS_WITH(parse("", {"noequals"}), Contains("--set noequals: expected key=value"));
  REQUIRE_THROWS_WITH(parse("[train]\nepochs = 10\n", {"train.epochs.x=1"}), Contains("train.epochs is not a table"));
  REQUIRE_THROWS_WITH(parse("", {"train.epochs=many"}), Contains("train.epochs: expected an integer, got string"));
}

TEST_CASE("config files: missing, and the shipped inputs", "[config]") {
  REQUIRE_THROWS_WITH(load_config("/no/such/file.toml", {}), Contains("/no/such/file.toml: config file not found"));
  for (const char* f : {"fmnist-mlp.toml", "fmnist-cnn.toml", "fmnist-cnn-sweep.toml", "fmnist-mlp-sweep.toml"}) {
    const std::string path = std::string(RS_SOURCE_DIR) + "/inputs/" + f;
    CHECK_NOTHROW(load_config(path, {}));
  }
}
