// Typed, validated configuration. Every key a config may hold is read here;
// anything else is an error naming its key path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/value.h"

namespace rs {

struct DataConfig {
  std::string format = "idx";                                        // idx | cifar10 | hdf5 | images
  std::string train_images, train_labels, test_images, test_labels;  // idx
  std::string path;       // cifar10: directory of *.bin batches; hdf5: training file; images: class folders
  std::string test_path;  // hdf5: test file; images: test class folders (optional)
  int64_t channels = 3;   // images: decoded to 1 (grey) or 3 (RGB) channels
  std::vector<int64_t> image_size{32, 32};  // images: resized to H x W
  int64_t validation = 5000;                // samples held out of train (seeded)
  int64_t classes = 10;
  bool normalize = true;     // per-channel mean/std of the training split
  int64_t crop_padding = 0;  // augmentation of training batches: random crop with this much zero padding
  bool flip = false;         // augmentation: random horizontal flip
};

struct LayerSpec {
  std::string type;     // dense conv2d maxpool, an activation (kernels/hd_math.h: kActivations), dropout flatten batchnorm
  std::string name;     // unique; defaults to type + ordinal (conv1, dense2, ...)
  int64_t out = 0;      // dense, conv2d
  int64_t kernel = 0;   // conv2d, maxpool
  int64_t stride = 0;   // conv2d (default 1), maxpool (default kernel)
  int64_t padding = 0;  // conv2d, maxpool
  double p = 0.0;       // dropout
};

struct ModelConfig {
  std::string preset = "mlp";                  // mlp | tf-mnist-cnn | custom
  std::vector<int64_t> hidden{512, 512};       // mlp (or width and depth: hidden = [width] * depth)
  std::string activation = "relu";             // mlp
  std::vector<int64_t> conv_channels{32, 64};  // tf-mnist-cnn
  int64_t dense = 1024;                        // tf-mnist-cnn
  double dropout = -1;                         // mlp 0.0, tf-mnist-cnn 0.5 when unset
  bool batch_norm = false;                     // mlp, tf-mnist-cnn: batchnorm after each hidden dense / conv
  std::vector<LayerSpec> layers;               // resolved list (custom: as given)
};

enum class OptimizerKind { sgd, adam, adamw };
const char* to_string(OptimizerKind k);  // "sgd", "adam", "adamw"

struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch_size = 64;      // global
  int64_t eval_batch_size = 0;  // 0: default_eval_batch of the ranks' backend
  double lr = 0.01;
  OptimizerKind optimizer = OptimizerKind::sgd;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  double label_smoothing = 0.0;  // training loss only: targets (1 - eps) onehot + eps / classes
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "constant";  // constant | step | cosine
  int64_t step_epochs = 1;            // step: multiply lr by gamma every step_epochs
  double gamma = 0.1;
  double min_lr = 0.0;         // cosine floor
  double warmup_epochs = 0.0;  // linear warmup from 0, any schedule
  int64_t seed = 1;
  std::string device = "auto";        // auto | cpu | cuda
  bool deterministic = false;         // cuda: deterministic cuDNN algorithms only (cpu always is)
  int64_t cudnn_workspace_mb = 1024;  // cuda: the most workspace a convolution algorithm may use
  bool allreduce_overlap = false;     // cpu ranks: nonblocking bucketed MPI allreduce during backward
  bool shard_optimizer = true;        // cpu ranks of one node: shared parameters, each rank updates 1/R
  bool exchange_activations = true;   // ... on several nodes: large dense layers send x and dy, not their gradient
};

struct Config {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  std::string text;    // the effective TOML (file + --set), stored in run files
  toml::table values;  // every key of data, model and train with the value used, defaults included
};

// Reads CONFIG.toml, applies `key=value` overrides (dotted keys; the value is
// TOML, or a bare string), validates. Throws UserError naming file and key.
Config load_config(const std::string& path, const std::vector<std::string>& sets);
// Parses TOML text (a run file's stored config); `origin` names it in errors.
// `overrides` (typed values, e.g. a sweep trial's) are applied after `sets`.
// The first batch norm layer after a flatten or dense layer (it normalises
// each value over the batch alone, so it cannot take a batch of one sample),
// or "" if none.
std::string batch_only_norm_layer(const ModelConfig& m);

Config parse_config_text(const std::string& text, const std::string& origin, const std::vector<std::string>& sets,
                         const Overrides& overrides = {});

// A key whose value differs between two tables (dotted, "" where unset).
struct KeyDifference {
  std::string key, a, b;
  std::string text(const std::string& a_name, const std::string& b_name) const;  // "train.lr is 0.1 in A, 0.2 in B"
};
// Every differing key of two tables (nested tables as dotted keys), in name order.
std::vector<KeyDifference> differences(const toml::table& a, const toml::table& b);

// The value a config uses for dotted `key`: its text's, else the default it
// takes (when the text is a valid config); nothing for a key no config has.
std::optional<TomlValue> config_value_at(const std::string& config_text, const std::string& key);

}  // namespace rs
