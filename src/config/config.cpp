// TOML -> Config. A Section reads one table, remembers which keys it used,
// and reports the rest as unknown; every error names file, line and key path.
#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "config/section.h"
#include "error.h"
#include "kernels/hd_math.h"

namespace rs {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

DataConfig read_data(Section s) {
  DataConfig d;
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  d.format = s.string("format", d.format, {"idx", "cifar10", "hdf5", "images"});
  const bool idx = d.format == "idx";
  d.train_images = s.string("train_images", idx ? dir + "train-images-idx3-ubyte.gz" : "");
  d.train_labels = s.string("train_labels", idx ? dir + "train-labels-idx1-ubyte.gz" : "");
  d.test_images = s.string("test_images", idx ? dir + "t10k-images-idx3-ubyte.gz" : "");
  d.test_labels = s.string("test_labels", idx ? dir + "t10k-labels-idx1-ubyte.gz" : "");
  d.path = s.string("path", "");
  d.test_path = s.string("test_path", "");
  d.validation = s.integer("validation", d.validation, 0, kMaxInt);
  d.classes = s.integer("classes", d.classes, 2, 1 << 20);
  d.normalize = s.boolean("normalize", d.normalize);
  d.crop_padding = s.integer("crop_padding", d.crop_padding, 0, 64);
  d.flip = s.boolean("flip", d.flip);
  d.channels = s.integer("channels", d.channels, 1, 3);
  if (d.channels == 2) s.error(nullptr, "channels", "images decode to 1 (grey) or 3 (RGB) channels");
  d.image_size = s.int_list("image_size", d.image_size, 1, 4096, false);
  if (d.image_size.size() != 2) s.error(nullptr, "image_size", "give [height, width]");
  if (idx && (d.train_images.empty() || d.train_labels.empty()))
    s.error(nullptr, "train_images", "idx data needs train_images and train_labels");
  if (idx && (d.test_images.empty() != d.test_labels.empty()))
    s.error(nullptr, "test_images", "give both test_images and test_labels, or neither");
  if (!idx && d.path.empty()) s.error(nullptr, "path", fmt::format("{} data needs a path", d.format));
  if (idx && (!d.path.empty() || !d.test_path.empty()))  // else silently ignored: the default data would be used
    s.error(nullptr, d.path.empty() ? "test_path" : "path",
            "only cifar10, hdf5 and images data take one; idx data takes train_images/train_labels (set data.format)");
  s.finish();
  return d;
}

std::vector<std::string> activation_names() {
  std::vector<std::string> v;
  for (const ActInfo& a : kActivations) v.push_back(a.name);
  return v;
}

std::vector<std::string> layer_types() {
  std::vector<std::string> v = {"dense", "conv2d", "maxpool"};
  for (const std::string& a : activation_names()) v.push_back(a);
  for (const char* t : {"dropout", "flatten", "batchnorm"}) v.push_back(t);
  return v;
}

LayerSpec read_layer(Section s, size_t i) {
  LayerSpec l;
  l.type = s.string("type", "", layer_types());
  if (l.type.empty()) s.error(nullptr, "type", fmt::format("layer {} needs a type", i));
  l.name = s.string("name", "");
  if (l.type == "dense" || l.type == "conv2d") l.out = s.integer("out", 0, 1, 1 << 24);
  if (l.type == "conv2d" || l.type == "maxpool") l.kernel = s.integer("kernel", 0, 1, 1024);
  if (l.type == "conv2d") l.stride = s.integer("stride", 1, 1, 1024);
  if (l.type == "maxpool") l.stride = s.integer("stride", l.kernel, 1, 1024);
  if (l.type == "conv2d" || l.type == "maxpool") l.padding = s.integer("padding", 0, 0, 1024);
  if (l.type == "dropout") l.p = s.number("p", 0.5, 0.0, 0.99);
  if ((l.type == "dense" || l.type == "conv2d") && l.out == 0) s.error(nullptr, "out", "is required");
  if ((l.type == "conv2d" || l.type == "maxpool") && l.kernel == 0) s.error(nullptr, "kernel", "is required");
  if (l.type == "maxpool" && 2 * l.padding > l.kernel) s.error(nullptr, "padding", "must be at most kernel/2");
  s.finish();
  return l;
}

LayerSpec make(const char* type, int64_t out = 0, int64_t kernel = 0, int64_t stride = 0, int64_t pad = 0,
               double p = 0) {
  LayerSpec l;
  l.type = type, l.out = out, l.kernel = kernel, l.stride = stride, l.padding = pad, l.p = p;
  return l;
}

ModelConfig read_model(Section s) {
  ModelConfig m;
  m.preset = s.string("preset", s.has("layers") ? "custom" : "mlp", {"mlp", "tf-mnist-cnn", "custom"});
  if (m.preset == "mlp") {
    m.hidden = s.int_list("hidden", m.hidden, 1, 1 << 24, true);
    if (s.has("width") || s.has("depth")) {  // hidden = [width] * depth: two keys a sweep can search apart
      if (s.has("hidden")) s.error(s.get("hidden"), "hidden", "give hidden, or width and depth, not both");
      const int64_t width = s.integer("width", 512, 1, 1 << 24), depth = s.integer("depth", 2, 0, 1024);
      m.hidden.assign(size_t(depth), width);
    }
    m.activation = s.string("activation", m.activation, activation_names());
    m.dropout = s.number("dropout", 0.0, 0.0, 0.99);
    m.batch_norm = s.boolean("batch_norm", m.batch_norm);
    m.layers.push_back(make("flatten"));
    for (int64_t h : m.hidden) {
      m.layers.push_back(make("dense", h));
      if (m.batch_norm) m.layers.push_back(make("batchnorm"));
      m.layers.push_back(make(m.activation.c_str()));
      if (m.dropout > 0) m.layers.push_back(make("dropout", 0, 0, 0, 0, m.dropout));
    }
    m.layers.push_back(make("dense", -1));  // -1: the number of classes
  } else if (m.preset == "tf-mnist-cnn") {
    m.conv_channels = s.int_list("conv_channels", m.conv_channels, 1, 1 << 16, false);
    if (m.conv_channels.size() != 2) s.error(nullptr, "conv_channels", "tf-mnist-cnn takes two channel counts");
    m.dense = s.integer("dense", m.dense, 1, 1 << 24);
    m.dropout = s.number("dropout", 0.5, 0.0, 0.99);
    m.batch_norm = s.boolean("batch_norm", m.batch_norm);
    for (int64_t c : m.conv_channels) {
      m.layers.push_back(make("conv2d", c, 5, 1, 2));
      if (m.batch_norm) m.layers.push_back(make("batchnorm"));
      m.layers.push_back(make("relu"));
      m.layers.push_back(make("maxpool", 0, 2, 2));
    }
    m.layers.push_back(make("flatten"));
    m.layers.push_back(make("dense", m.dense));
    if (m.batch_norm) m.layers.push_back(make("batchnorm"));
    m.layers.push_back(make("relu"));
    if (m.dropout > 0) m.layers.push_back(make("dropout", 0, 0, 0, 0, m.dropout));
    m.layers.push_back(make("dense", -1));
  } else {
    auto list = s.tables("layers");
    if (list.empty()) s.error(nullptr, "layers", "a custom model needs a non-empty layers list");
    for (size_t i = 0; i < list.size(); ++i) m.layers.push_back(read_layer(std::move(list[i]), i));
  }
  // Default names: type + ordinal within its type (conv1, pool1, dense2, ...); unique.
  std::map<std::string, int> count;
  std::set<std::string> names;
  for (LayerSpec& l : m.layers) {
    const std::string prefix = l.type == "conv2d"      ? "conv"
                               : l.type == "maxpool"   ? "pool"
                               : l.type == "batchnorm" ? "bn"
                                                       : l.type;
    if (l.name.empty()) l.name = prefix + std::to_string(++count[prefix]);
    if (!names.insert(l.name).second)
      s.error(nullptr, "layers", fmt::format("layer name \"{}\" is used twice", l.name));
  }
  s.finish();
  return m;
}

TrainConfig read_train(Section s) {
  TrainConfig t;
  t.epochs = s.integer("epochs", t.epochs, 1, 1000000);
  t.batch_size = s.integer("batch_size", t.batch_size, 1, 1 << 20);
  t.eval_batch_size = s.integer("eval_batch_size", t.eval_batch_size, 1, 1 << 20);
  t.lr = s.number("lr", t.lr, 0.0, 1e6, true);
  const std::string opt = s.string("optimizer", to_string(t.optimizer), {"sgd", "adam", "adamw"});
  t.optimizer = opt == "sgd" ? OptimizerKind::sgd : opt == "adam" ? OptimizerKind::adam : OptimizerKind::adamw;
  t.momentum = s.number("momentum", t.optimizer == OptimizerKind::sgd ? t.momentum : 0.0, 0.0, 1.0);
  t.nesterov = s.boolean("nesterov", t.nesterov);
  if (t.nesterov && t.momentum == 0) s.error(nullptr, "nesterov", "needs momentum > 0");
  t.weight_decay = s.number("weight_decay", t.optimizer == OptimizerKind::adamw ? 0.01 : 0.0, 0.0, 1e3);
  t.label_smoothing = s.number("label_smoothing", t.label_smoothing, 0.0, 0.999);
  t.beta1 = s.number("beta1", t.beta1, 0.0, 1.0);
  t.beta2 = s.number("beta2", t.beta2, 0.0, 1.0);
  t.eps = s.number("eps", t.eps, 0.0, 1.0, true);
  t.schedule = s.string("schedule", t.schedule, {"constant", "step", "cosine"});
  t.step_epochs = s.integer("step_epochs", t.step_epochs, 1, 1000000);
  t.gamma = s.number("gamma", t.gamma, 0.0, 1.0);
  t.min_lr = s.number("min_lr", t.min_lr, 0.0, 1e6);
  t.warmup_epochs = s.number("warmup_epochs", t.warmup_epochs, 0.0, 1e6);
  t.seed = s.integer("seed", t.seed, 0, std::numeric_limits<int64_t>::max());
  t.device = s.string("device", t.device, {"auto", "cpu", "cuda"});
  t.deterministic = s.boolean("deterministic", t.deterministic);
  t.cudnn_workspace_mb = s.integer("cudnn_workspace_mb", t.cudnn_workspace_mb, 0, 1 << 20);
  t.allreduce_overlap = s.boolean("allreduce_overlap", t.allreduce_overlap);
  t.shard_optimizer = s.boolean("shard_optimizer", t.shard_optimizer);
  t.exchange_activations = s.boolean("exchange_activations", t.exchange_activations);
  s.finish();
  return t;
}

// The table holding dotted `key`'s last part (created as needed) and that part;
// errors name `what` (the --set argument or the sweep key).
std::pair<toml::table*, std::string> leaf_table(toml::table& root, const std::string& key, const std::string& what) {
  toml::table* t = &root;
  size_t start = 0;
  for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
    const std::string part = key.substr(start, dot - start);
    if (part.empty()) fail("{}: empty part in key", what);
    toml::node* n = t->get(part);
    if (!n) n = &t->insert_or_assign(part, toml::table{}).first->second;
    if (!n->is_table()) fail("{}: {} is not a table", what, key.substr(0, dot));
    t = n->as_table();
  }
  const std::string leaf = key.substr(start);
  if (leaf.empty()) fail("{}: empty part in key", what);
  return {t, leaf};
}

// A --set value that is not TOML, taken as a bare string (`train.optimizer=adam`).
struct BareSet {
  std::string set, key, why;  // the argument, its key, why its value is not TOML
};

// `a.b.c=value`: value parsed as TOML, else taken as a bare string (returned).
std::optional<BareSet> apply_set(toml::table& root, const std::string& set) {
  const size_t eq = set.find('=');
  if (eq == std::string::npos || eq == 0) fail("--set {}: expected key=value", set);
  const std::string key = set.substr(0, eq), value = set.substr(eq + 1);
  auto [t, leaf] = leaf_table(root, key, "--set " + set);
  try {
    toml::table v = toml::parse(std::string_view("v = " + value), std::string_view("--set"));
    t->insert_or_assign(leaf, *v.get("v"));
    return std::nullopt;
  } catch (const toml::parse_error& e) {
    t->insert_or_assign(leaf, value);
    return BareSet{set, key, std::string(e.description())};
  }
}

Config from_table(toml::table& root, const std::string& origin, const std::vector<std::string>& sets,
                  const Overrides& overrides) {
  std::vector<BareSet> bare;
  for (const std::string& s : sets)
    if (std::optional<BareSet> b = apply_set(root, s)) bare.push_back(*b);
  for (const auto& [key, value] : overrides) {
    auto [t, leaf] = leaf_table(root, key, key);
    t->insert_or_assign(leaf, value.node());
  }
  Config c;
  Section top(root, "", origin, &c.values);
  try {
    c.data = read_data(top.table("data"));
    c.model = read_model(top.table("model"));
    c.train = read_train(top.table("train"));
  } catch (const UserError& e) {  // about a value --set gave as a bare string: name --set and why it is not TOML
    const std::string what = e.what();
    for (const BareSet& b : bare)
      if (const size_t at = what.find(" " + b.key + ": "); at != std::string::npos)
        fail("--set {}: {} (as TOML: {})", b.set, what.substr(at + 1), b.why);
    throw;
  }
  if (const std::string bn = batch_only_norm_layer(c.model); !bn.empty() && c.train.batch_size < 2)
    fail("{}: train.batch_size: batch norm layer {} needs at least 2 samples a step (the variance of one value)",
         origin, bn);
  top.table("sweep");  // read by the sweep command
  top.finish();
  std::ostringstream text;
  text << toml::toml_formatter(root);
  c.text = text.str();
  return c;
}

std::string parse_error_text(const toml::parse_error& e, const std::string& origin) {
  return fmt::format("{}:{}:{}: {}", origin, e.source().begin.line, e.source().begin.column, e.description());
}

}  // namespace

const char* to_string(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::sgd:
      return "sgd";
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
  }
  return "?";
}

Config load_config(const std::string& path, const std::vector<std::string>& sets) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: config file not found", path);
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw UserError(parse_error_text(e, path));
  }
  return from_table(root, path, sets, {});
}

std::string batch_only_norm_layer(const ModelConfig& m) {
  bool flat = false;
  for (const LayerSpec& l : m.layers) {
    flat = flat || l.type == "flatten" || l.type == "dense";
    if (flat && l.type == "batchnorm") return l.name;
  }
  return "";
}

Config parse_config_text(const std::string& text, const std::string& origin, const std::vector<std::string>& sets,
                         const Overrides& overrides) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(origin));
  } catch (const toml::parse_error& e) {
    throw UserError(parse_error_text(e, origin));
  }
  return from_table(root, origin, sets, overrides);
}

namespace {

void flatten(const toml::table& t, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (auto&& [k, v] : t) {
    const std::string key = prefix + std::string(k.str());
    if (v.is_table())
      flatten(*v.as_table(), key + ".", out);
    else
      out[key] = TomlValue(v).text();
  }
}

}  // namespace

std::vector<KeyDifference> differences(const toml::table& a, const toml::table& b) {
  std::map<std::string, std::string> x, y;
  flatten(a, "", x);
  flatten(b, "", y);
  std::vector<KeyDifference> out;
  for (const auto& [k, v] : x)
    if (auto it = y.find(k); it == y.end() || it->second != v) out.push_back({k, v, it == y.end() ? "" : it->second});
  for (const auto& [k, v] : y)
    if (!x.count(k)) out.push_back({k, "", v});
  std::sort(out.begin(), out.end(), [](const KeyDifference& p, const KeyDifference& q) { return p.key < q.key; });
  return out;
}

std::string KeyDifference::text(const std::string& a_name, const std::string& b_name) const {
  auto value = [](const std::string& v) { return v.empty() ? std::string("unset") : v.substr(0, 80); };
  return fmt::format("{} is {} in {}, {} in {}", key, value(a), a_name, value(b), b_name);
}

std::optional<TomlValue> config_value_at(const std::string& config_text, const std::string& key) {
  if (std::optional<TomlValue> v = toml_value_at(config_text, key)) return v;
  try {
    const Config c = parse_config_text(config_text, "config", {});
    if (const toml::node* n = c.values.at_path(key).node()) return TomlValue(*n);
  } catch (const UserError&) {
  }
  return std::nullopt;
}

}  // namespace rs
