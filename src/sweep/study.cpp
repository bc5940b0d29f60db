#include "sweep/study.h"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "build_info.h"
#include "config/config.h"
#include "error.h"
#include "io/h5.h"
#include "io/provenance.h"
#include "io/run_file.h"

namespace rs {
namespace {

// A group's members (h5_members), none when the group is absent (no curves yet).
std::vector<std::string> members(hid_t f, const std::string& group, const char* list, const std::string& file) {
  return h5_exists(f, group) ? h5_members(f, group, list, file) : std::vector<std::string>{};
}

}  // namespace

int best_row(const Study& s) {
  int best = -1;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const TrialRow& r = s.rows[i];
    if (r.status != TrialStatus::completed && r.status != TrialStatus::pruned) continue;
    if (best < 0 || r.best_val_accuracy > s.rows[best].best_val_accuracy) best = int(i);
  }
  return best;
}

void write_study(const std::string& path, const Study& s, int world_size) {
  const auto lock = h5_lock();
  h5_quiet();
  {
    H5Image f(path);
    h5_attr(f, "/", "format", std::string("ranksweep-study"));
    h5_attr(f, "/", "config", s.config_text);
    h5_attr(f, "/", "version", std::string(RS_VERSION));
    h5_attr(f, "/", "git_sha", std::string(RS_GIT_SHA));
    h5_attr(f, "/", "world_size", int64_t(world_size));
    h5_attr(f, "/", "libraries", library_versions());
    h5_attr(f, "/", "sweep_seconds", s.sweep_seconds);
    const char* job = std::getenv("SLURM_JOB_ID");
    h5_attr(f, "/", "slurm_job_id", std::string(job ? job : ""));
    h5_attr(f, "/", "hyperparameters", [&] {
      std::string k;
      for (const std::string& x : s.keys) k += (k.empty() ? "" : ",") + x;
      return k;
    }());

    const hsize_t n = s.rows.size();
    std::vector<int64_t> ids, epochs, groups;
    std::vector<double> best, test, wall, start, end;
    std::vector<std::string> status, message;
    for (const TrialRow& r : s.rows) {
      ids.push_back(r.id), epochs.push_back(r.epochs), groups.push_back(r.group);
      best.push_back(r.best_val_accuracy), test.push_back(r.test_accuracy), wall.push_back(r.wall_seconds);
      start.push_back(r.start_seconds), end.push_back(r.end_seconds);
      status.push_back(to_string(r.status)), message.push_back(r.message);
    }
    H5 g(H5Gcreate2(f, "/trials", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    h5_write(f, "/trials/id", ids.data(), {n});
    h5_write(f, "/trials/epochs", epochs.data(), {n});
    h5_write(f, "/trials/group", groups.data(), {n});
    h5_write(f, "/trials/best_val_accuracy", best.data(), {n});
    h5_write(f, "/trials/test_accuracy", test.data(), {n});
    h5_write(f, "/trials/wall_seconds", wall.data(), {n});
    h5_write(f, "/trials/start_seconds", start.data(), {n});
    h5_write(f, "/trials/end_seconds", end.data(), {n});
    h5_write_strings(f, "/trials/status", status);
    h5_write_strings(f, "/trials/message", message);
    // one column per hyperparameter: the default trial holds the config's value
    for (const std::string& key : s.keys) {
      const std::optional<TomlValue> config_value = config_value_at(s.config_text, key);
      std::vector<std::string> text;
      std::vector<double> num;
      bool numeric = true;
      for (const TrialRow& r : s.rows) {
        std::optional<TomlValue> v = config_value;
        for (const auto& [k, x] : r.params)
          if (k == key) v = x;
        const std::optional<double> x = v ? v->number() : std::nullopt;
        numeric = numeric && x;
        num.push_back(x.value_or(0));
        text.push_back(v ? v->text() : "default");
      }
      if (numeric)
        h5_write(f, "/trials/" + key, num.data(), {n});
      else
        h5_write_strings(f, "/trials/" + key, text);
    }
    std::vector<std::string> curve_ids;
    for (const auto& [id, c] : s.curves) {
      std::vector<std::string> metrics;
      for (const auto& [metric, v] : c) {
        h5_write(f, fmt::format("/curves/{}/{}", id, metric), v.data(), {v.size()});
        metrics.push_back(metric);
      }
      h5_attr_names(f, fmt::format("/curves/{}", id), "metrics", metrics);
      curve_ids.push_back(std::to_string(id));
    }
    if (!curve_ids.empty()) h5_attr_names(f, "/curves", "trials", curve_ids);
    const int b = best_row(s);
    h5_attr(f, "/", "best_trial", int64_t(b < 0 ? -1 : s.rows[b].id));
    if (b >= 0 && !s.rows[b].run_path.empty() && std::filesystem::exists(s.rows[b].run_path)) {
      H5 src = h5_open_read(s.rows[b].run_path);
      H5 bg(H5Gcreate2(f, "/best", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      for (const char* part : {"model", "history"})
        if (H5Ocopy(src, part, bg, part, H5P_DEFAULT, H5P_DEFAULT) < 0)
          throw std::runtime_error(fmt::format("cannot copy /{} of {} into {}", part, s.rows[b].run_path, path));
      for (const char* a : {"format", "config", "epochs_done", "git_sha", "version"})
        if (h5_has_attr(src, "/", a)) {
          if (std::string(a) == "epochs_done")
            h5_attr(f, "/best", a, h5_attr_int(src, "/", a, s.rows[b].run_path));
          else
            h5_attr(f, "/best", a, h5_attr_string(src, "/", a, s.rows[b].run_path));
        }
      h5_attr(f, "/best", "trial", int64_t(s.rows[b].id));
    }
    f.commit();
  }
}

Study read_study(const std::string& path) {
  const auto lock = h5_lock();
  h5_quiet();
  const H5CrashGuard guard(path);
  H5 f = h5_open_read(path);
  if (!h5_has_attr(f, "/", "format") || h5_attr_string(f, "/", "format", path) != "ranksweep-study")
    fail("{}: not a ranksweep study file (no format=\"ranksweep-study\" attribute)", path);
  Study s;
  s.config_text = h5_attr_string(f, "/", "config", path);
  if (h5_has_attr(f, "/", "sweep_seconds")) s.sweep_seconds = h5_attr_doubles(f, "/", "sweep_seconds", path).at(0);
  const std::string keys = h5_attr_string(f, "/", "hyperparameters", path);
  for (size_t a = 0; a < keys.size();) {
    const size_t b = std::min(keys.find(',', a), keys.size());
    s.keys.push_back(keys.substr(a, b - a));
    a = b + 1;
  }
  const auto dims = h5_dims(f, "/trials/id", path);
  const size_t n = dims.empty() ? 0 : dims[0];
  auto ints = [&](const char* c) {
    std::vector<int64_t> v(n);
    if (h5_dims(f, std::string("/trials/") + c, path) != dims) fail("{}: /trials/{} has the wrong length", path, c);
    if (n) h5_read(f, std::string("/trials/") + c, v.data(), path);
    return v;
  };
  auto reals = [&](const char* c) {
    std::vector<double> v(n);
    if (h5_dims(f, std::string("/trials/") + c, path) != dims) fail("{}: /trials/{} has the wrong length", path, c);
    if (n) h5_read(f, std::string("/trials/") + c, v.data(), path);
    return v;
  };
  const auto id = ints("id"), ep = ints("epochs"), gr = ints("group");
  const auto best = reals("best_val_accuracy"), test = reals("test_accuracy"), wall = reals("wall_seconds"),
             st = reals("start_seconds"), en = reals("end_seconds");
  const auto status = h5_read_strings(f, "/trials/status", path), msg = h5_read_strings(f, "/trials/message", path);
  if (status.size() != n || msg.size() != n) fail("{}: /trials columns differ in length", path);
  s.rows.resize(n);
  for (size_t i = 0; i < n; ++i) {
    TrialRow& r = s.rows[i];
    r.id = id[i], r.epochs = ep[i], r.group = gr[i], r.best_val_accuracy = best[i], r.test_accuracy = test[i];
    r.wall_seconds = wall[i], r.start_seconds = st[i], r.end_seconds = en[i], r.message = msg[i];
    if (!parse_trial_status(status[i], &r.status))
      fail("{}: trial {} has an unknown status \"{}\"", path, r.id, status[i]);
  }
  for (const std::string& key : s.keys) {
    const std::string p = "/trials/" + key;
    size_t tsize = 0;
    if (h5_type_class(f, p, &tsize) == H5T_STRING) {
      const std::vector<std::string> text = h5_read_strings(f, p, path);
      if (text.size() != n) fail("{}: {} has the wrong length", path, p);
      for (size_t i = 0; i < n; ++i)  // "default": a config value unknown when it was written (no value to replay)
        if (text[i] != "default") s.rows[i].params.emplace_back(key, parse_toml_value(text[i]));
    } else {
      std::vector<double> v(n);
      if (h5_dims(f, p, path) != dims) fail("{}: {} has the wrong length", path, p);
      if (n) h5_read(f, p, v.data(), path);
      for (size_t i = 0; i < n; ++i) s.rows[i].params.emplace_back(key, TomlValue(v[i]));
    }
  }
  for (const std::string& c : members(f, "/curves", "trials", path))
    for (const std::string& m : members(f, "/curves/" + c, "metrics", path)) {
      const std::string p = "/curves/" + c + "/" + m;
      const auto d = h5_dims(f, p, path);
      int64_t id = 0;
      const auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), id);
      if (ec != std::errc() || end != c.data() + c.size()) fail("{}: /curves/{} is not a trial number", path, c);
      if (d.size() != 1 || d[0] > (hsize_t(1) << 24)) fail("{}: {} must be a list of epochs", path, p);
      std::vector<double> v(d[0]);
      if (!v.empty()) h5_read(f, p, v.data(), path);
      s.curves[id][m] = std::move(v);
    }
  return s;
}

}  // namespace rs
