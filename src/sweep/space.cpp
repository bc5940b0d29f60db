#include "sweep/space.h"

#include <algorithm>
#include <cmath>

#include "config/config.h"
#include "config/section.h"
#include "error.h"
#include "kernels/philox.h"
#include "sweep/tpe.h"

namespace rs {

std::string TrialSpec::text() const {
  std::string out;
  for (const auto& [k, v] : params) out += (out.empty() ? "" : ", ") + k + "=" + v.text();
  return out;
}

SweepConfig parse_sweep(const std::string& text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(origin));
  } catch (const toml::parse_error& e) {
    fail("{}:{}: {}", origin, e.source().begin.line, e.description());
  }
  SweepConfig c;
  Section top(root, "", origin);
  Section s = top.table("sweep");
  c.method = s.string("method", c.method, {"grid", "random", "tpe"});
  c.trials = s.integer("trials", c.trials, 1, 1000000);
  c.seed = s.integer("seed", c.seed, 0, std::numeric_limits<int64_t>::max());
  c.time_budget = s.number("time_budget", 0.0, 0.0, 1e9);
  c.group_size = s.integer("group_size", c.group_size, 1, 1 << 20);
  c.warm_start = s.string("warm_start", "");
  if (!c.warm_start.empty() && c.method != "tpe")
    s.error(s.get("warm_start"), "warm_start", "seeds a model-based search: it needs method = \"tpe\"");
  if (s.has("tpe")) {
    Section t = s.table("tpe");
    c.tpe.startup_trials = t.integer("startup_trials", c.tpe.startup_trials, 0, 1000000);
    c.tpe.candidates = t.integer("candidates", c.tpe.candidates, 1, 100000);
    t.finish();
  }
  Section space = s.table("space");
  for (const std::string& key : space.keys()) {
    const toml::node* n = space.get(key);
    const bool augmentation = key == "data.crop_padding" || key == "data.flip";  // change batches, not what is read
    if (key.rfind("train.", 0) != 0 && key.rfind("model.", 0) != 0 && !augmentation)
      space.error(n, key,
                  "only train.*, model.*, data.crop_padding and data.flip can be searched (the data is read once "
                  "per sweep)");
    if (key == "train.device" || key == "train.deterministic" || key == "train.cudnn_workspace_mb")
      space.error(n, key, "cannot be searched (a rank group keeps one device context for all its trials)");
    Dimension d;
    d.key = key;
    if (n->is_array()) {
      d.kind = Distribution::values;
      for (const toml::node& v : *n->as_array()) d.values.emplace_back(v);
      if (d.values.empty()) space.error(n, key, "needs at least one value");
    } else if (n->is_table()) {
      Section t(*n->as_table(), space.key_path(key), origin);
      const std::string dist = t.string("distribution", "", {"uniform", "log_uniform", "int_uniform", "values"});
      if (dist.empty()) t.error(nullptr, "distribution", "is required");
      d.kind = dist == "values"        ? Distribution::values
               : dist == "uniform"     ? Distribution::uniform
               : dist == "log_uniform" ? Distribution::log_uniform
                                       : Distribution::int_uniform;
      if (d.kind == Distribution::values) {
        const toml::node* vals = t.get("values");
        if (!vals || !vals->is_array() || vals->as_array()->empty()) t.error(vals, "values", "needs a non-empty array");
        for (const toml::node& v : *vals->as_array()) d.values.emplace_back(v);
      } else {
        d.low = t.number("low", 0, -1e300, 1e300);
        d.high = t.number("high", 0, -1e300, 1e300);
        if (!(d.high > d.low)) t.error(nullptr, "high", "must be greater than low");
        if (d.kind == Distribution::log_uniform && d.low <= 0)
          t.error(nullptr, "low", "must be positive for log_uniform");
        constexpr double kMaxInt = 9007199254740992.0;  // 2^53: every integer below is exact
        if (d.kind == Distribution::int_uniform && (d.low != std::floor(d.low) || d.high != std::floor(d.high) ||
                                                    std::abs(d.low) > kMaxInt || std::abs(d.high) > kMaxInt))
          t.error(nullptr, "high", "int_uniform needs integer bounds within +-2^53");
      }
      t.finish();
    } else {
      space.error(n, key, "expected an array of values or a table { distribution = ..., low = ..., high = ... }");
    }
    if (c.method == "grid" && d.kind != Distribution::values)
      space.error(n, key, "grid search takes a list of values; distributions need method = \"random\" or \"tpe\"");
    c.space.push_back(std::move(d));
  }
  if (c.space.empty()) s.error(nullptr, "space", "the search space is empty");
  for (Section e : s.tables("enqueue")) {
    const std::string where = fmt::format("{}: sweep.enqueue[{}]", origin, c.enqueue.size());
    Overrides trial;
    for (const Dimension& d : c.space)  // in space order
      if (const toml::node* n = e.get(d.key)) trial.emplace_back(d.key, TomlValue(*n));
    for (const std::string& key : e.keys())
      if (std::none_of(c.space.begin(), c.space.end(), [&](const Dimension& d) { return d.key == key; }))
        e.error(e.get(key), key, "is not a key of sweep.space (an enqueued trial sets searched keys only)");
    if (trial.empty()) fail("{}: an enqueued trial needs at least one key of sweep.space", where);
    c.enqueue.push_back(std::move(trial));
  }
  if (s.has("asha")) {
    Section a = s.table("asha");
    c.asha = true;
    c.min_epochs = a.integer("min_epochs", c.min_epochs, 1, 1000000);
    c.reduction = a.integer("reduction", c.reduction, 2, 1000);
    a.finish();
  }
  s.finish();
  return c;
}

std::vector<std::string> validate_space(const SweepConfig& s, const std::string& base_text, const std::string& origin) {
  auto check = [&](const Overrides& o, const std::string& what) {
    try {
      parse_config_text(base_text, origin, {}, o);
    } catch (const UserError& e) {
      fail("{}: {} does not make a valid config: {}", origin, what, e.what());
    }
  };
  for (const Dimension& d : s.space) {
    std::vector<TomlValue> vs = d.values;
    if (d.kind == Distribution::int_uniform)
      vs = {TomlValue(int64_t(d.low)), TomlValue(int64_t(d.high))};
    else if (d.kind != Distribution::values)
      vs = {TomlValue(d.low), TomlValue(d.high)};
    for (const TomlValue& v : vs) check({{d.key, v}}, fmt::format("sweep.space \"{}\" = {}", d.key, v.text()));
  }
  // Enqueued trials: inside the space, each one once, none the default (trial
  // 0 runs it); compared with the config's values filled in for unset keys.
  auto full = [&](const Overrides& o) {
    std::vector<std::string> v;
    for (const Dimension& d : s.space) {
      std::optional<TomlValue> x = config_value_at(base_text, d.key);
      for (const auto& [k, y] : o)
        if (k == d.key) x = y;
      v.push_back(x ? x->text() : "");
    }
    return v;
  };
  const std::vector<std::string> default_values = full({});
  std::vector<std::string> notes;
  for (size_t i = 0; i < s.enqueue.size(); ++i) {
    const std::string what = fmt::format("sweep.enqueue[{}]", i);
    check(s.enqueue[i], what);
    for (const auto& [k, v] : s.enqueue[i])
      for (const Dimension& d : s.space)
        if (d.key == k && !tpe_coordinate(d, v))
          notes.push_back(
              fmt::format("{}: \"{}\" = {} is outside sweep.space: it runs as given (recorded; a model-based "
                          "search counts it unknown in that key)",
                          what, k, v.text().substr(0, 80)));
    const std::vector<std::string> mine = full(s.enqueue[i]);
    if (mine == default_values)
      fail("{}: {} is the default trial (the config's own values): trial 0 runs it already", origin, what);
    for (size_t j = 0; j < i; ++j)
      if (full(s.enqueue[j]) == mine) fail("{}: {} repeats sweep.enqueue[{}]", origin, what, j);
  }
  return notes;
}

int64_t trial_count(const SweepConfig& s) {
  const int64_t fixed = 1 + int64_t(s.enqueue.size());  // the default and the enqueued trials
  if (s.method != "grid") return fixed + s.trials;
  int64_t n = 1;
  for (const Dimension& d : s.space) n *= int64_t(d.values.size());
  return fixed + n;
}

TrialSpec make_trial(const SweepConfig& s, int64_t id) {
  TrialSpec t;
  t.id = id;
  if (id == 0) return t;  // the default trial: the config as written
  if (id <= int64_t(s.enqueue.size())) {
    t.params = s.enqueue[size_t(id - 1)];
    return t;
  }
  id -= int64_t(s.enqueue.size());  // the searched trials are numbered as if nothing were enqueued
  if (s.method == "grid") {
    int64_t k = id - 1;  // mixed-radix digits, last dimension fastest
    std::vector<size_t> digit(s.space.size());
    for (size_t i = s.space.size(); i-- > 0;) {
      digit[i] = size_t(k % int64_t(s.space[i].values.size()));
      k /= int64_t(s.space[i].values.size());
    }
    for (size_t i = 0; i < s.space.size(); ++i) t.params.emplace_back(s.space[i].key, s.space[i].values[digit[i]]);
    return t;
  }
  for (size_t i = 0; i < s.space.size(); ++i) {
    const Dimension& d = s.space[i];
    const uint64_t key = rng_key(uint64_t(s.seed), 0x53574550u /* "SWEP" */, uint64_t(id));
    const double u = double(philox_uniform(key, i, 0));
    switch (d.kind) {
      case Distribution::values:
        t.params.emplace_back(d.key, d.values[std::min(d.values.size() - 1, size_t(u * double(d.values.size())))]);
        break;
      case Distribution::uniform:
        t.params.emplace_back(d.key, TomlValue(d.low + u * (d.high - d.low)));
        break;
      case Distribution::log_uniform:
        t.params.emplace_back(d.key, TomlValue(std::exp(std::log(d.low) + u * (std::log(d.high) - std::log(d.low)))));
        break;
      case Distribution::int_uniform:
        t.params.emplace_back(d.key, TomlValue(int64_t(std::floor(d.low + u * (d.high - d.low + 1)))));
        break;
    }
  }
  return t;
}

bool same_as_default(const TrialSpec& t, const std::string& config_text) {
  if (t.id == 0 || t.params.empty()) return false;
  for (const auto& [k, v] : t.params) {
    const std::optional<TomlValue> mine = config_value_at(config_text, k);
    if (!mine || !(*mine == v)) return false;
  }
  return true;
}

std::vector<int64_t> asha_rungs(const SweepConfig& s, int64_t max_epochs) {
  std::vector<int64_t> r;
  if (!s.asha) return r;
  for (int64_t e = s.min_epochs; e < max_epochs; e *= s.reduction) r.push_back(e);
  return r;
}

std::vector<std::pair<int64_t, double>> rung_results(const SweepConfig& s, const std::vector<double>& val,
                                                     int64_t epochs) {
  std::vector<std::pair<int64_t, double>> r;
  for (int64_t e : asha_rungs(s, epochs + 1))
    if (e <= int64_t(val.size())) r.emplace_back(e, val[size_t(e - 1)]);
  return r;
}

}  // namespace rs
