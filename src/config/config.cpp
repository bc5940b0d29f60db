// TOML -> Config. A Section reads one table, remembers which keys it used,
// and reports the rest as unknown; every error names file, line and key path.
#include "config/config.h"

#include <toml++/toml.h>

#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "error.h"

namespace rs {
namespace {

class Section {
 public:
  Section(const toml::table& t, std::string path, const std::string& origin)
      : m_t(t), m_path(std::move(path)), m_origin(origin) {}

  std::string key_path(std::string_view key) const { return m_path.empty() ? std::string(key) : m_path + "." + std::string(key); }

  [[noreturn]] void error(const toml::node* n, std::string_view key, const std::string& what) const {
    std::string where = m_origin;
    if (n && n->source().begin.line > 0) where += fmt::format(":{}", n->source().begin.line);
    fail("{}: {}: {}", where, key_path(key), what);
  }

  const toml::node* get(std::string_view key) {
    m_used.insert(std::string(key));
    return m_t.get(key);
  }

  int64_t integer(std::string_view key, int64_t def, int64_t lo, int64_t hi) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_integer()) error(n, key, fmt::format("expected an integer, got {}", type_name(*n)));
    return check_range(n, key, n->as_integer()->get(), lo, hi);
  }

  double number(std::string_view key, double def, double lo, double hi, bool lo_open = false) {
    const toml::node* n = get(key);
    if (!n) return def;
    double v;
    if (n->is_floating_point())
      v = n->as_floating_point()->get();
    else if (n->is_integer())
      v = double(n->as_integer()->get());
    else
      error(n, key, fmt::format("expected a number, got {}", type_name(*n)));
    if (!(v >= lo && v <= hi) || (lo_open && v == lo))
      error(n, key, fmt::format("{} is out of range {}{}, {}]", v, lo_open ? "(" : "[", lo, hi));
    return v;
  }

  bool boolean(std::string_view key, bool def) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_boolean()) error(n, key, fmt::format("expected true or false, got {}", type_name(*n)));
    return n->as_boolean()->get();
  }

  std::string string(std::string_view key, const std::string& def, std::initializer_list<const char*> allowed = {}) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_string()) error(n, key, fmt::format("expected a string, got {}", type_name(*n)));
    std::string v = n->as_string()->get();
    if (allowed.size()) {
      std::string list;
      for (const char* a : allowed) {
        if (v == a) return v;
        list += (list.empty() ? "" : " | ") + std::string(a);
      }
      error(n, key, fmt::format("\"{}\" is not one of {}", v, list));
    }
    return v;
  }

  std::vector<int64_t> int_list(std::string_view key, const std::vector<int64_t>& def, int64_t lo, int64_t hi,
                                bool allow_empty) {
    const toml::node* n = get(key);
    if (!n) return def;
    if (!n->is_array()) error(n, key, fmt::format("expected an array of integers, got {}", type_name(*n)));
    std::vector<int64_t> out;
    const toml::array& a = *n->as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string k = fmt::format("{}[{}]", key, i);
      if (!a[i].is_integer()) error(&a[i], k, fmt::format("expected an integer, got {}", type_name(a[i])));
      out.push_back(check_range(&a[i], k, a[i].as_integer()->get(), lo, hi));
    }
    if (out.empty() && !allow_empty) error(n, key, "must not be empty");
    return out;
  }

  // A sub-table; missing -> empty table.
  Section table(std::string_view key) {
    const toml::node* n = get(key);
    if (n && !n->is_table()) error(n, key, fmt::format("expected a table, got {}", type_name(*n)));
    return Section(n ? *n->as_table() : empty_table(), key_path(key), m_origin);
  }

  // An array of tables; missing -> empty.
  std::vector<Section> tables(std::string_view key) {
    const toml::node* n = get(key);
    std::vector<Section> out;
    if (!n) return out;
    if (!n->is_array()) error(n, key, fmt::format("expected an array of tables, got {}", type_name(*n)));
    const toml::array& a = *n->as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string k = fmt::format("{}[{}]", key, i);
      if (!a[i].is_table()) error(&a[i], k, fmt::format("expected a table, got {}", type_name(a[i])));
      out.emplace_back(*a[i].as_table(), key_path(k), m_origin);
    }
    return out;
  }

  bool has(std::string_view key) const { return m_t.contains(key); }

  // Every key not read is unknown.
  void finish() const {
    for (auto&& [k, v] : m_t)
      if (!m_used.count(std::string(k.str()))) error(&v, k.str(), "unknown key");
  }

 private:
  static const toml::table& empty_table() {
    static const toml::table t;
    return t;
  }
  static std::string type_name(const toml::node& n) {
    std::ostringstream s;
    s << n.type();
    return s.str();
  }
  int64_t check_range(const toml::node* n, std::string_view key, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi) error(n, key, fmt::format("{} is out of range [{}, {}]", v, lo, hi));
    return v;
  }

  const toml::table& m_t;
  std::string m_path;
  const std::string& m_origin;
  std::set<std::string> m_used;
};

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

DataConfig read_data(Section s) {
  DataConfig d;
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  d.format = s.string("format", d.format, {"idx", "cifar10", "hdf5"});
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
  if (idx && (d.train_images.empty() || d.train_labels.empty()))
    s.error(nullptr, "train_images", "idx data needs train_images and train_labels");
  if (idx && (d.test_images.empty() != d.test_labels.empty()))
    s.error(nullptr, "test_images", "give both test_images and test_labels, or neither");
  if (!idx && d.path.empty()) s.error(nullptr, "path", fmt::format("{} data needs a path", d.format));
  s.finish();
  return d;
}

LayerSpec read_layer(Section s, size_t i) {
  LayerSpec l;
  l.type = s.string("type", "", {"dense", "conv2d", "maxpool", "relu", "tanh", "sigmoid", "dropout", "flatten"});
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
    m.activation = s.string("activation", m.activation, {"relu", "tanh", "sigmoid"});
    m.dropout = s.number("dropout", 0.0, 0.0, 0.99);
    m.layers.push_back(make("flatten"));
    for (int64_t h : m.hidden) {
      m.layers.push_back(make("dense", h));
      m.layers.push_back(make(m.activation.c_str()));
      if (m.dropout > 0) m.layers.push_back(make("dropout", 0, 0, 0, 0, m.dropout));
    }
    m.layers.push_back(make("dense", -1));  // -1: the number of classes
  } else if (m.preset == "tf-mnist-cnn") {
    m.conv_channels = s.int_list("conv_channels", m.conv_channels, 1, 1 << 16, false);
    if (m.conv_channels.size() != 2) s.error(nullptr, "conv_channels", "tf-mnist-cnn takes two channel counts");
    m.dense = s.integer("dense", m.dense, 1, 1 << 24);
    m.dropout = s.number("dropout", 0.5, 0.0, 0.99);
    for (int64_t c : m.conv_channels) {
      m.layers.push_back(make("conv2d", c, 5, 1, 2));
      m.layers.push_back(make("relu"));
      m.layers.push_back(make("maxpool", 0, 2, 2));
    }
    m.layers.push_back(make("flatten"));
    m.layers.push_back(make("dense", m.dense));
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
    const std::string prefix = l.type == "conv2d" ? "conv" : l.type == "maxpool" ? "pool" : l.type;
    if (l.name.empty()) l.name = prefix + std::to_string(++count[prefix]);
    if (!names.insert(l.name).second) s.error(nullptr, "layers", fmt::format("layer name \"{}\" is used twice", l.name));
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
  t.optimizer = s.string("optimizer", t.optimizer, {"sgd", "adam", "adamw"});
  t.momentum = s.number("momentum", t.optimizer == "sgd" ? t.momentum : 0.0, 0.0, 1.0);
  t.nesterov = s.boolean("nesterov", t.nesterov);
  if (t.nesterov && t.momentum == 0) s.error(nullptr, "nesterov", "needs momentum > 0");
  t.weight_decay = s.number("weight_decay", t.optimizer == "adamw" ? 0.01 : 0.0, 0.0, 1e3);
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
  t.allreduce_overlap = s.boolean("allreduce_overlap", t.allreduce_overlap);
  s.finish();
  return t;
}

// `a.b.c=value`: value parsed as TOML, else taken as a bare string.
void apply_set(toml::table& root, const std::string& set) {
  const size_t eq = set.find('=');
  if (eq == std::string::npos || eq == 0) fail("--set {}: expected key=value", set);
  const std::string key = set.substr(0, eq), value = set.substr(eq + 1);
  toml::table* t = &root;
  size_t start = 0;
  for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
    const std::string part = key.substr(start, dot - start);
    if (part.empty()) fail("--set {}: empty part in key", set);
    toml::node* n = t->get(part);
    if (!n) n = &t->insert_or_assign(part, toml::table{}).first->second;
    if (!n->is_table()) fail("--set {}: {} is not a table", set, key.substr(0, dot));
    t = n->as_table();
  }
  const std::string leaf = key.substr(start);
  if (leaf.empty()) fail("--set {}: empty part in key", set);
  try {
    toml::table v = toml::parse(std::string_view("v = " + value), std::string_view("--set"));
    t->insert_or_assign(leaf, *v.get("v"));
  } catch (const toml::parse_error&) {
    t->insert_or_assign(leaf, value);
  }
}

Config from_table(toml::table& root, const std::string& origin, const std::vector<std::string>& sets) {
  for (const std::string& s : sets) apply_set(root, s);
  Config c;
  Section top(root, "", origin);
  c.data = read_data(top.table("data"));
  c.model = read_model(top.table("model"));
  c.train = read_train(top.table("train"));
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

Config load_config(const std::string& path, const std::vector<std::string>& sets) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: config file not found", path);
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw UserError(parse_error_text(e, path));
  }
  return from_table(root, path, sets);
}

Config parse_config_text(const std::string& text, const std::string& origin, const std::vector<std::string>& sets) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(origin));
  } catch (const toml::parse_error& e) {
    throw UserError(parse_error_text(e, origin));
  }
  return from_table(root, origin, sets);
}

}  // namespace rs
