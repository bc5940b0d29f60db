#include "sweep/study.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "build_info.h"
#include "config/config.h"
#include "error.h"
#include "io/h5.h"
#include "io/provenance.h"
#include "sweep/journal.h"
#include "train/run_file.h"

namespace rs {
namespace {

// A group's members (h5_members), none when the group is absent (no curves yet).
std::vector<std::string> members(hid_t f, const std::string& group, const char* list, const std::string& file) {
  return h5_exists(f, group) ? h5_members(f, group, list, file) : std::vector<std::string>{};
}

}  // namespace

Study read_study_file(const std::string& path);  // study.h5 alone

int best_row(const Study& s) {
  int best = -1;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const TrialRow& r = s.rows[i];
    if (r.status != TrialStatus::completed && r.status != TrialStatus::pruned) continue;
    if (best < 0 || r.best_val_accuracy > s.rows[best].best_val_accuracy) best = int(i);
  }
  return best;
}

namespace {

// A study's datasets, as written: built without the HDF5 lock.
struct StudyTables {
  std::vector<std::pair<std::string, std::vector<int64_t>>> ints;  // /trials/id, ... and /curves/trial
  std::vector<std::pair<std::string, std::vector<double>>> reals;  // /trials/best_val_accuracy, ..., /curves/<metric>
  std::vector<std::pair<std::string, std::vector<std::string>>> texts;  // /trials/status, /trials/message
  std::vector<std::string> metrics;
};

StudyTables tables(const Study& s) {
  StudyTables t;
  auto& ints = t.ints;
  auto& reals = t.reals;
  for (const char* c : {"id", "epochs", "group"})
    ints.emplace_back(std::string("/trials/") + c, std::vector<int64_t>{});
  for (const char* c : {"best_val_accuracy", "test_accuracy", "wall_seconds", "start_seconds", "end_seconds"})
    reals.emplace_back(std::string("/trials/") + c, std::vector<double>{});
  t.texts = {{"/trials/status", {}}, {"/trials/message", {}}};
  for (const TrialRow& r : s.rows) {
    ints[0].second.push_back(r.id), ints[1].second.push_back(r.epochs), ints[2].second.push_back(r.group);
    reals[0].second.push_back(r.best_val_accuracy), reals[1].second.push_back(r.test_accuracy);
    reals[2].second.push_back(r.wall_seconds), reals[3].second.push_back(r.start_seconds);
    reals[4].second.push_back(r.end_seconds);
    t.texts[0].second.push_back(to_string(r.status)), t.texts[1].second.push_back(r.message);
  }
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
      reals.emplace_back("/trials/" + key, std::move(num));
    else
      t.texts.emplace_back("/trials/" + key, std::move(text));
  }
  // curves as one table, a row per (trial, epoch), /curves/trial the trial's id (the run
  // history's own `epoch` column numbers the epochs): a few datasets whatever the study's size
  std::set<std::string> names;
  for (const auto& [id, c] : s.curves)
    for (const auto& [metric, v] : c)
      if (metric != "trial") names.insert(metric);
  std::vector<int64_t> trial;
  std::map<std::string, std::vector<double>> cols;
  for (const auto& [id, c] : s.curves) {
    size_t len = 0;
    for (const auto& [metric, v] : c) len = std::max(len, v.size());
    trial.insert(trial.end(), len, id);
    for (const std::string& m : names) {
      const auto v = c.find(m);
      for (size_t e = 0; e < len; ++e)
        cols[m].push_back(v != c.end() && e < v->second.size() ? v->second[e] : std::nan(""));
    }
  }
  ints.emplace_back("/curves/trial", std::move(trial));
  for (auto& [name, v] : cols) reals.emplace_back("/curves/" + name, std::move(v));
  t.metrics.assign(names.begin(), names.end());
  return t;
}

// The best trial's model and history into /best (the study stays usable when the trials/ directory is gone).
void copy_best(hid_t f, const Study& s, const std::string& path) {
  const int b = best_row(s);
  h5_attr(f, "/", "best_trial", int64_t(b < 0 ? -1 : s.rows[b].id));
  if (b < 0 || s.rows[b].run_path.empty() || !std::filesystem::exists(s.rows[b].run_path)) return;
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

}  // namespace

// The coordinator writes the study while rank 0's own group may checkpoint:
// the tables are built without the HDF5 lock, the lock is given up between
// datasets (no other HDF5 user waits for more than one dataset's write),
// and the disk write and its sync run without it.
void write_study(const std::string& path, const Study& s, int world_size) {
  const StudyTables t = tables(s);
  std::unique_lock<std::recursive_mutex> lock = h5_lock();
  auto yield = [&] { lock.unlock(), std::this_thread::yield(), lock.lock(); };
  h5_quiet();
  {
    H5Image f(path);
    {  // every handle below is closed before the file, under the lock
      h5_attr(f, "/", "format", std::string("ranksweep-study"));
      h5_attr(f, "/", "config", s.config_text);
      h5_attr(f, "/", "version", std::string(RS_VERSION));
      h5_attr(f, "/", "git_sha", std::string(RS_GIT_SHA));
      h5_attr(f, "/", "world_size", int64_t(world_size));
      h5_attr(f, "/", "libraries", library_versions());
      h5_attr(f, "/", "sweep_seconds", s.sweep_seconds);
      h5_attr(f, "/", "journal_seq", s.journal_seq);
      const char* job = std::getenv("SLURM_JOB_ID");
      h5_attr(f, "/", "slurm_job_id", std::string(job ? job : ""));
      h5_attr(f, "/", "hyperparameters", [&] {
        std::string k;
        for (const std::string& x : s.keys) k += (k.empty() ? "" : ",") + x;
        return k;
      }());
      H5 g(H5Gcreate2(f, "/trials", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      H5 cg(H5Gcreate2(f, "/curves", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      for (const auto& [name, v] : t.ints) yield(), h5_write(f, name, v.data(), {hsize_t(v.size())});
      for (const auto& [name, v] : t.reals) yield(), h5_write(f, name, v.data(), {hsize_t(v.size())});
      for (const auto& [name, v] : t.texts) yield(), h5_write_strings(f, name, v);
      h5_attr_names(f, "/curves", "metrics", t.metrics);
      yield();
      copy_best(f, s, path);
    }
    f.close();
    lock.unlock();  // the disk write and its sync hold up no other thread's HDF5 work
    f.write();
  }
}

bool study_exists(const std::string& path) {
  const std::string j = journal_path(path);
  return std::filesystem::exists(path) || (!j.empty() && std::filesystem::exists(j));
}

Study read_study(const std::string& path) {
  Study s;
  const std::string j = journal_path(path);
  if (j.empty() || std::filesystem::exists(path) || !std::filesystem::exists(j)) s = read_study_file(path);
  if (!apply_journal(j, s) && s.config_text.empty()) s = read_study_file(path);  // its error: no file
  return s;
}

Study read_study_file(const std::string& path) {
  const auto lock = h5_lock();
  h5_quiet();
  const H5CrashGuard guard(path);
  H5 f = h5_open_read(path);
  if (!h5_has_attr(f, "/", "format") || h5_attr_string(f, "/", "format", path) != "ranksweep-study")
    fail("{}: not a ranksweep study file (no format=\"ranksweep-study\" attribute)", path);
  Study s;
  s.config_text = h5_attr_string(f, "/", "config", path);
  if (h5_has_attr(f, "/", "sweep_seconds")) s.sweep_seconds = h5_attr_doubles(f, "/", "sweep_seconds", path).at(0);
  if (h5_has_attr(f, "/", "journal_seq")) s.journal_seq = h5_attr_int(f, "/", "journal_seq", path);
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
  if (h5_exists(f, "/curves") && h5_has_attr(f, "/curves", "metrics")) {  // a row per (trial, epoch)
    const auto d = h5_dims(f, "/curves/trial", path);
    if (d.size() != 1 || d[0] > (hsize_t(1) << 32)) fail("{}: /curves/trial must be a list", path);
    std::vector<int64_t> trial(d[0]);
    if (!trial.empty()) h5_read(f, "/curves/trial", trial.data(), path);
    for (const std::string& m : h5_attr_names(f, "/curves", "metrics", path)) {
      if (h5_dims(f, "/curves/" + m, path) != d) fail("{}: /curves/{} differs in length from /curves/trial", path, m);
      std::vector<double> v(d[0]);
      if (!v.empty()) h5_read(f, "/curves/" + m, v.data(), path);
      for (size_t i = 0; i < v.size(); ++i) s.curves[trial[i]][m].push_back(v[i]);
    }
    return s;
  }
  for (const std::string& c : members(f, "/curves", "trials", path))  // written before: a group per trial
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
