// Sweeps: every trial of a grid runs exactly once and lands in study.h5 for
// any rank count and group size (run under mpiexec by ctest; group size from
// RS_TEST_GROUP); diverging trials are recorded as such; ASHA prunes obvious
// losers; the search space is validated.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "app/commands.h"
#include "error.h"
#include "helpers.h"
#include "kernels/hd_math.h"
#include "nn/model.h"
#include "sweep/journal.h"
#include "sweep/shared.h"
#include "sweep/space.h"
#include "sweep/study.h"
#include "train/run_file.h"

using namespace rs;
using namespace rs::test;
using Catch::Matchers::Contains;

namespace {

// Rank 0 writes toy data and the config; returns the config path everywhere.
std::string sweep_config(const Comm& world, const TempDir* d, const std::string& body) {
  std::string path;
  if (world.leader()) {
    path = *d / "sweep.toml";
    std::ofstream(path) << toy_idx(*d, 300, 100, 8, 8, 3) << "validation = 60\n" << body;
  }
  world.bcast_string(path);
  return path;
}

int test_group_size() {
  const char* g = std::getenv("RS_TEST_GROUP");
  return g ? std::atoi(g) : 1;
}

// Runs a sweep of `body` over the world in groups of RS_TEST_GROUP ranks;
// returns the output directory (on rank 0; empty elsewhere).
std::string world_sweep(const Comm& world, const TempDir* d, const std::string& body) {
  SweepOptions o;
  o.config = sweep_config(world, d, body);
  o.group_size = test_group_size();
  o.out = world.leader() ? d->path.string() + "/out" : "";
  world.bcast_string(o.out);
  REQUIRE(sweep_command(o, world) == 0);
  return o.out;
}

}  // namespace

TEST_CASE("every trial of a grid runs exactly once and lands in the study", "[sweep]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  if (world.leader()) d = std::make_unique<TempDir>("sweep_grid");
  const std::string out = world_sweep(world, d.get(), R"([model]
hidden = [16]
[train]
epochs = 2
batch_size = 30
lr = 0.05
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.1, 0.02, 1e4]
"model.hidden" = [[8], [24]]
[[sweep.enqueue]]
"train.lr" = 0.07
)");
  if (!world.leader()) return;
  const Study s = read_study(out + "/study.h5");
  std::multiset<int64_t> ids;
  for (const TrialRow& r : s.rows) ids.insert(r.id);
  CHECK(ids == std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});  // trial 1: the enqueued one
  for (const TrialRow& a : s.rows)  // the enqueued trial is handed out before every grid trial
    for (const TrialRow& b : s.rows)
      if (a.id == 1 && b.id > 1) CHECK(a.start_seconds <= b.start_seconds);
  std::set<int64_t> groups;
  for (const TrialRow& r : s.rows) {
    INFO("trial " << r.id << " status " << to_string(r.status) << " " << r.message);
    groups.insert(r.group);
    CHECK(r.group < world.size() / test_group_size());
    const bool huge = r.params.size() == 2 && *r.params[1].second.number() > 100;  // train.lr = 1e4
    if (r.id == 1) CHECK(r.params[1].second.text() == "0.07");                     // the enqueued trial, its lr
    CHECK(std::string(to_string(r.status)) == (huge ? "diverged" : "completed"));
    if (!huge) CHECK(r.best_val_accuracy > 0.5);
    if (!huge) CHECK(s.curves.at(r.id).at("val_accuracy").size() == 2);
  }
  CHECK(s.keys == std::vector<std::string>{"model.hidden", "train.lr"});
  CHECK(best_row(s) >= 0);
  // Every job's start and end are on the sweep's one clock: each group's jobs
  // in order, none overlapping, none before the sweep began.
  std::map<int64_t, std::vector<std::pair<double, double>>> jobs;
  for (const TrialRow& r : s.rows) jobs[r.group].emplace_back(r.start_seconds, r.end_seconds);
  for (auto& [g, v] : jobs) {
    std::sort(v.begin(), v.end());
    for (size_t i = 0; i < v.size(); ++i) {
      INFO("group " << g << " job " << i << " [" << v[i].first << ", " << v[i].second << "]");
      CHECK(v[i].first >= 0);
      CHECK(v[i].first <= v[i].second);
      if (i > 0) CHECK(v[i - 1].second <= v[i].first);
    }
  }
  // The study is a model file for `infer`: its best trial, loadable into the model its config builds.
  const RunFile rf = read_model_file(out + "/study.h5");
  CHECK(rf.root == "/best");
  CHECK(rf.epochs_done == 2);
  const Config c = parse_config_text(rf.config_text, "best", {});
  auto be = make_cpu_backend();
  Model m(*be, c.model, Shape{rf.c, rf.h, rf.w}, rf.classes, 4);
  load_into(rf, m, nullptr);
  CHECK(m.params_host() != std::vector<float>(m.num_params(), 0.f));
}

// A failure on the group leader alone (its trial directory cannot be made:
// a file is in the way) fails the trial for every rank of the group, which
// then goes on in step with the next trial (with groups of 2 this hung, or
// crashed, before failures were agreed).
TEST_CASE("a failure of one rank of a group fails the trial for the whole group; the sweep goes on", "[sweep]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  if (world.leader()) d = std::make_unique<TempDir>("sweep_leader_fails");
  SweepOptions o;
  o.config = sweep_config(world, d.get(), R"([model]
hidden = [8]
[train]
epochs = 2
batch_size = 30
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.1, 0.05, 0.02]
)");
  o.group_size = test_group_size();
  if (world.leader()) {
    o.out = d->path.string() + "/out";
    fs::create_directories(o.out + "/trials");
    std::ofstream(o.out + "/trials/2") << "in the way\n";
  }
  world.bcast_string(o.out);
  REQUIRE(sweep_command(o, world) == 0);
  if (!world.leader()) return;
  const Study s = read_study(o.out + "/study.h5");
  REQUIRE(s.rows.size() == 4);
  for (const TrialRow& r : s.rows) {
    INFO("trial " << r.id << " " << to_string(r.status) << " " << r.message);
    CHECK(std::string(to_string(r.status)) == (r.id == 2 ? "failed" : "completed"));
    if (r.id == 2) CHECK_THAT(r.message, Contains("trials/2"));
  }
}

// A trial that failed because its output could not be written (a full disk)
// runs again when the sweep is resumed; any other failure stays.
TEST_CASE("a trial whose write failed runs again on resume; other failures stay", "[sweep]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  if (world.leader()) d = std::make_unique<TempDir>("sweep_write_failed");
  const std::string body = R"([model]
hidden = [8]
[train]
epochs = 1
batch_size = 30
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.1, 0.05, 0.02]
)";
  const std::string out = world_sweep(world, d.get(), body);
  if (world.leader()) {  // as if trial 1 had hit a full disk and trial 2 a bad value
    Study s = read_study(out + "/study.h5");
    for (TrialRow& r : s.rows) {
      if (r.id == 1)
        r.status = TrialStatus::failed,
        r.message = std::string(kWriteFailed) + "run.h5: cannot write: No space left on device";
      if (r.id == 2) r.status = TrialStatus::failed, r.message = "some other reason";
    }
    write_study(out + "/study.h5", s, world.size());
    fs::remove_all(out + "/trials/1");
  }
  world_sweep(world, d.get(), body);
  if (!world.leader()) return;
  const Study s = read_study(out + "/study.h5");
  REQUIRE(s.rows.size() == 4);
  for (const TrialRow& r : s.rows) {
    INFO("trial " << r.id << " " << to_string(r.status) << " " << r.message);
    CHECK(std::string(to_string(r.status)) == (r.id == 2 ? "failed" : "completed"));
  }
  CHECK(fs::exists(out + "/trials/1/run.h5"));
}

// A drawn value reaches the trial's config and the study exactly, to the
// last bit: no text formatting on the way.
TEST_CASE("random draws are trained with and recorded exactly", "[sweep]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  if (world.leader()) d = std::make_unique<TempDir>("sweep_exact");
  const std::string body = R"([model]
hidden = [8]
[train]
epochs = 1
batch_size = 60
lr = 0.05
[sweep]
method = "random"
trials = 3
seed = 7
[sweep.space]
"train.lr" = { distribution = "log_uniform", low = 1e-3, high = 1e-1 }
"train.momentum" = { distribution = "uniform", low = 0.5, high = 0.99 }
)";
  const std::string out = world_sweep(world, d.get(), body);
  if (!world.leader()) return;
  const Study s = read_study(out + "/study.h5");
  const SweepConfig sweep = parse_sweep(load_config(*d / "sweep.toml", {}).text, "sweep.toml");
  REQUIRE(s.rows.size() == 4);
  for (const TrialRow& r : s.rows) {
    if (r.id == 0) continue;
    const TrialSpec t = make_trial(sweep, r.id);
    REQUIRE(r.params.size() == 2);
    const RunFile rf = read_run_file(out + "/trials/" + std::to_string(r.id) + "/run.h5");
    const Config trained = parse_config_text(rf.config_text, "trial", {});
    const double lr = *t.params[0].second.number(), momentum = *t.params[1].second.number();  // keys in order
    INFO("trial " << r.id << " lr " << fmt::format("{}", lr));
    // the draw itself (Philox keyed by seed and trial id), recomputed here
    const uint64_t key = rng_key(7, 0x53574550u /* "SWEP" */, uint64_t(r.id));
    CHECK(lr == std::exp(std::log(1e-3) + double(philox_uniform(key, 0, 0)) * (std::log(1e-1) - std::log(1e-3))));
    CHECK(momentum == 0.5 + double(philox_uniform(key, 1, 0)) * (0.99 - 0.5));
    CHECK(*r.params[0].second.number() == lr);  // recorded (float64 column), bit for bit
    CHECK(*r.params[1].second.number() == momentum);
    CHECK(trained.train.lr == lr);  // trained with (the run file's config), bit for bit
    CHECK(trained.train.momentum == momentum);
  }
}

// TPE with ASHA over rank groups: the coordinator proposes each trial's
// values and sends them with its job; they are trained with (the run file's
// config) and recorded bit for bit, and stay inside the space. A sweep whose
// study is lost restarts its trials from their checkpoints with the values
// they were proposed (nothing is proposed twice for a trial).
TEST_CASE("TPE trials: proposed by the coordinator, trained with and recorded exactly", "[sweep]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  if (world.leader()) d = std::make_unique<TempDir>("sweep_tpe");
  const std::string body = R"([model]
hidden = [8]
[train]
epochs = 2
batch_size = 60
lr = 0.05
[sweep]
method = "tpe"
trials = 6
seed = 3
[sweep.tpe]
startup_trials = 2
[sweep.space]
"train.lr" = { distribution = "log_uniform", low = 1e-3, high = 0.3 }
"train.batch_size" = { distribution = "int_uniform", low = 20, high = 80 }
[sweep.asha]
min_epochs = 1
reduction = 2
)";
  const std::string out = world_sweep(world, d.get(), body);
  Study first;
  if (world.leader()) {
    first = read_study(out + "/study.h5");
    REQUIRE(first.rows.size() == 7);
    std::set<int64_t> ids;
    for (const TrialRow& r : first.rows) {
      ids.insert(r.id);
      REQUIRE(r.params.size() == 2);
      const double batch = *r.params[0].second.number(), lr = *r.params[1].second.number();  // keys in order
      const RunFile rf = read_run_file(out + "/trials/" + std::to_string(r.id) + "/run.h5");
      const Config trained = parse_config_text(rf.config_text, "trial", {});
      INFO("trial " << r.id << " lr " << fmt::format("{}", lr) << " batch " << batch);
      CHECK(trained.train.lr == lr);
      CHECK(double(trained.train.batch_size) == batch);
      if (r.id == 0) continue;
      CHECK(lr >= 1e-3);
      CHECK(lr <= 0.3);
      CHECK(batch == std::round(batch));
      CHECK(batch >= 20);
      CHECK(batch <= 80);
    }
    CHECK(ids == std::set<int64_t>{0, 1, 2, 3, 4, 5, 6});
    std::filesystem::remove(out + "/study.h5");
  }
  SweepOptions o;  // again, with the checkpoints but without the study
  o.config = world.leader() ? *d / "sweep.toml" : "";
  world.bcast_string(o.config);
  o.group_size = test_group_size();
  o.out = out;
  world.bcast_string(o.out);
  REQUIRE(sweep_command(o, world) == 0);
  if (!world.leader()) return;
  const Study again = read_study(out + "/study.h5");
  REQUIRE(again.rows.size() == 7);
  for (const TrialRow& r : again.rows)
    for (const TrialRow& f : first.rows)
      if (f.id == r.id) {
        INFO("trial " << r.id);
        CHECK(*r.params[0].second.number() == *f.params[0].second.number());
        CHECK(*r.params[1].second.number() == *f.params[1].second.number());
      }
}

// Under mpiexec with 1-4 ranks (groups of RS_TEST_GROUP): ASHA with
// promotions across groups. Whatever the arrival order, every trial lands
// once, runs to a rung or its full budget, every good trial is promoted (the
// top half at rung 1 in the end is the default and the good ones), and most
// losers stop at the first rung.
TEST_CASE("ASHA over rank groups: promotions, no trial lost, no hang", "[sweep]") {
  const Comm world(MPI_COMM_WORLD);
  std::unique_ptr<TempDir> d;
  if (world.leader()) d = std::make_unique<TempDir>("sweep_asha_groups");
  const std::string out = world_sweep(world, d.get(), R"([model]
hidden = [16]
[train]
epochs = 3
batch_size = 30
lr = 0.05
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.08, 1e-7, 0.06, 1e-7, 1e-7, 0.04, 1e-7]
[sweep.asha]
min_epochs = 1
reduction = 2
)");
  if (!world.leader()) return;
  const Study s = read_study(out + "/study.h5");
  std::multiset<int64_t> ids;
  int losers_at_1 = 0;
  for (const TrialRow& r : s.rows) {
    ids.insert(r.id);
    INFO("trial " << r.id << ": " << to_string(r.status) << " after " << r.epochs << " epochs");
    const bool loser = r.id == 2 || r.id == 4 || r.id == 5 || r.id == 7;
    CHECK((r.status == TrialStatus::completed || r.status == TrialStatus::pruned));
    CHECK((r.status == TrialStatus::completed) == (r.epochs == 3));
    CHECK((r.epochs == 1 || r.epochs == 2 || r.epochs == 3));
    if (!loser) CHECK(r.epochs >= 2);
    if (r.id == 0) CHECK(std::string(to_string(r.status)) == "completed");
    losers_at_1 += loser && r.epochs == 1;
  }
  CHECK(ids == std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(losers_at_1 >= 2);
}

TEST_CASE("ASHA prunes the obvious losers", "[sweep-asha]") {
  const Comm self(MPI_COMM_SELF);
  TempDir d("sweep_asha");
  const std::string cfg = sweep_config(self, &d, R"([model]
hidden = [16]
[train]
epochs = 2
batch_size = 30
lr = 0.05
[sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.05, 0.08, 1e-7, 1e-7, 1e-7]
[sweep.asha]
min_epochs = 1
reduction = 2
)");
  SweepOptions o;
  o.config = cfg, o.out = d.path.string() + "/out";
  REQUIRE(sweep_command(o, self) == 0);
  const Study s = read_study(o.out + "/study.h5");
  std::set<int64_t> ids;
  for (const TrialRow& r : s.rows) {
    ids.insert(r.id);
    INFO("trial " << r.id << ": " << to_string(r.status) << " after " << r.epochs << " epochs, val "
                  << r.best_val_accuracy);
    if (r.id >= 3) {  // lr 1e-7 learns nothing: stopped at the first rung, never promoted
      CHECK(std::string(to_string(r.status)) == "pruned");
      CHECK(r.epochs == 1);
    } else {  // trial 0 (the default, never pruned) and trial 2 (lr 0.08: in the top half at rung 1, promoted)
      CHECK(std::string(to_string(r.status)) == "completed");
      CHECK(r.epochs == 2);
    }
  }
  CHECK(ids == std::set<int64_t>{0, 2, 3, 4, 5});  // grid point 1 is the default: not run twice
}

TEST_CASE("search spaces: grid and random trials, validation", "[sweep-asha]") {
  const std::string base = "[train]\nepochs = 9\n";
  const SweepConfig g =
      parse_sweep(base + "[sweep]\n[sweep.space]\n\"train.lr\" = [0.1, 0.2]\n\"model.dense\" = [1, 2, 3]\n", "s.toml");
  CHECK(trial_count(g) == 7);
  CHECK(make_trial(g, 0).params.empty());
  // dimensions in key order; the last one varies fastest
  CHECK(make_trial(g, 1).text() == "model.dense=1, train.lr=0.1");
  CHECK(make_trial(g, 2).text() == "model.dense=1, train.lr=0.2");
  CHECK(make_trial(g, 6).text() == "model.dense=3, train.lr=0.2");
  const std::string with_default = "[train]\nlr = 2e-1\n[model]\ndense = 3\n";
  CHECK(same_as_default(make_trial(g, 6), with_default));
  CHECK_FALSE(same_as_default(make_trial(g, 5), with_default));
  CHECK_FALSE(same_as_default(make_trial(g, 6), "[train]\nlr = 0.2\n"));  // model.dense not set: not the point
  const SweepConfig r = parse_sweep(base + R"([sweep]
method = "random"
trials = 50
[sweep.space]
"train.lr" = { distribution = "log_uniform", low = 1e-4, high = 1e-1 }
"train.batch_size" = { distribution = "int_uniform", low = 16, high = 32 }
"train.optimizer" = ["sgd", "adam"]
[sweep.asha]
min_epochs = 1
reduction = 3
)",
                                    "s.toml");
  CHECK(trial_count(r) == 51);
  CHECK(asha_rungs(r, 9) == std::vector<int64_t>{1, 3});
  std::set<std::string> opts;
  for (int i = 1; i <= 50; ++i) {
    const TrialSpec t = make_trial(r, i);
    const int bs = int(*t.params[0].second.number());  // train.batch_size, train.lr, train.optimizer
    const double lr = *t.params[1].second.number();
    CHECK((lr >= 1e-4 && lr <= 1e-1));
    CHECK((bs >= 16 && bs <= 32));
    opts.insert(t.params[2].second.text());
    CHECK(make_trial(r, i).text() == t.text());  // a pure function of the index
  }
  CHECK(opts.size() == 2);
  REQUIRE_THROWS_WITH(parse_sweep("[sweep]\n[sweep.space]\n\"data.validation\" = [1]\n", "s.toml"),
                      Contains("sweep.space.data.validation") && Contains("only train.*, model.*"));
  for (const char* key : {"train.device", "train.deterministic", "train.cudnn_workspace_mb"})
    REQUIRE_THROWS_WITH(parse_sweep(fmt::format("[sweep]\n[sweep.space]\n\"{}\" = [1]\n", key), "s.toml"),
                        Contains(key) && Contains("cannot be searched"));
  REQUIRE_THROWS_WITH(
      parse_sweep("[sweep]\n[sweep.space]\n\"train.lr\" = { distribution = \"uniform\", low = 1, high = 2 }\n",
                  "s.toml"),
      Contains("grid search takes a list"));
  REQUIRE_THROWS_WITH(parse_sweep("[sweep]\nmethod = \"random\"\n", "s.toml"), Contains("search space is empty"));
  REQUIRE_THROWS_WITH(parse_sweep("[sweep]\nmethd = 1\n[sweep.space]\n\"train.lr\" = [1]\n", "s.toml"),
                      Contains("sweep.methd: unknown key"));
}

TEST_CASE("the shipped sweep configs parse", "[sweep-asha]") {
  for (const auto& [f, n] : {std::pair{"fmnist-cnn-sweep.toml", 25}, std::pair{"fmnist-mlp-sweep.toml", 13}}) {
    const std::string path = std::string(RS_SOURCE_DIR) + "/inputs/" + f;
    const SweepConfig s = parse_sweep(load_config(path, {}).text, path);
    CHECK(trial_count(s) == n);
  }
}

TEST_CASE("enqueued trials come right after the default, values exact, keys checked", "[sweep-asha]") {
  const std::string base = R"([sweep]
method = "grid"
[sweep.space]
"train.lr" = [0.1, 0.2]
"model.dense" = [1, 3]
[[sweep.enqueue]]
"train.lr" = 0.0123456789012345
"model.dense" = 7
[[sweep.enqueue]]
"train.lr" = 0.5
)";
  const SweepConfig g = parse_sweep(base, "s.toml");
  REQUIRE(g.enqueue.size() == 2);
  CHECK(trial_count(g) == 1 + 2 + 4);
  CHECK(make_trial(g, 1).text() == "model.dense=7, train.lr=0.0123456789012345");  // space order, exact
  CHECK(*make_trial(g, 1).params[1].second.number() == 0.0123456789012345);
  CHECK(make_trial(g, 2).text() == "train.lr=0.5");                 // the config keeps model.dense
  CHECK(make_trial(g, 3).text() == "model.dense=1, train.lr=0.1");  // then the grid, from its first point
  CHECK(make_trial(g, 6).text() == "model.dense=3, train.lr=0.2");
  // random draws do not move when trials are enqueued before them
  const std::string rnd =
      "[sweep]\nmethod = \"random\"\ntrials = 3\n[sweep.space]\n"
      "\"train.lr\" = { distribution = \"log_uniform\", low = 1e-4, high = 1e-1 }\n";
  const SweepConfig r0 = parse_sweep(rnd, "s.toml");
  const SweepConfig r1 = parse_sweep(rnd + "[[sweep.enqueue]]\n\"train.lr\" = 0.01\n", "s.toml");
  CHECK(trial_count(r1) == trial_count(r0) + 1);
  for (int64_t i = 1; i < trial_count(r0); ++i) CHECK(make_trial(r1, i + 1).text() == make_trial(r0, i).text());
  REQUIRE_THROWS_WITH(
      parse_sweep(base + "[[sweep.enqueue]]\n\"train.momentum\" = 0.5\n", "s.toml"),
      Contains("s.toml") && Contains("sweep.enqueue[2].train.momentum") && Contains("not a key of sweep.space"));
  REQUIRE_THROWS_WITH(parse_sweep(base + "[[sweep.enqueue]]\n", "s.toml"),
                      Contains("sweep.enqueue[2]: an enqueued trial needs at least one key"));
}

// The study journal alone (no MPI): appended rows replace or add in arrival
// order, values and curves exactly (NaN, text with newlines), a torn or
// damaged record ends the reading with what came before it, records already
// in study.h5 count once, and a damaged header is one line naming the file.
TEST_CASE("study journal: appends, replays, survives a torn tail", "[sweep-asha]") {
  const TempDir d("study_journal");
  const std::string study = d / "study.h5", journal = d / "study.journal";
  Study s;
  s.config_text = "[train]\nlr = 0.1\n";
  s.keys = {"train.lr"};
  auto add = [&](int64_t id, double lr, double val, TrialStatus st) {
    TrialRow r;
    r.id = id, r.params = {{"train.lr", TomlValue(lr)}}, r.status = st, r.epochs = id + 1;
    r.best_val_accuracy = val, r.test_accuracy = val / 2, r.group = id % 2, r.message = "line one\n\"two\"";
    s.curves[id]["val_accuracy"] = {val / 3, std::nan(""), val};
    s.rows.push_back(r);
    return &s.rows.back();
  };
  s.rows.reserve(8);
  Journal j(journal, s);
  const TrialRow* r0 = add(0, 0.1, 0.5, TrialStatus::completed);
  const TrialRow* r1 = add(1, 0.1 + 1e-17 * 3, 0.25, TrialStatus::pruned);
  j.append(s, {r0, r1});
  s.rows[1].status = TrialStatus::completed, s.rows[1].best_val_accuracy = 0.75;  // promoted
  s.curves[1]["val_accuracy"][2] = 0.75;
  const TrialRow* r2 = add(2, 1.0 / 3, 0.125, TrialStatus::diverged);
  s.sweep_seconds = 42.5;
  j.append(s, {&s.rows[1], r2});
  CHECK(j.seq() == 4);

  auto same = [&](const Study& a, size_t rows) {
    REQUIRE(a.rows.size() == rows);
    CHECK(a.config_text == s.config_text);
    CHECK(a.keys == s.keys);
    for (size_t i = 0; i < rows; ++i) {
      const TrialRow &x = a.rows[i], &y = s.rows[i];
      CHECK(x.id == y.id);
      CHECK(x.status == y.status);
      CHECK(x.best_val_accuracy == y.best_val_accuracy);
      CHECK(x.message == y.message);
      REQUIRE(x.params.size() == 1);
      CHECK(x.params[0].second.number() == y.params[0].second.number());  // to the bit
      const std::vector<double>& c = a.curves.at(x.id).at("val_accuracy");
      REQUIRE(c.size() == 3);
      CHECK(std::isnan(c[1]));
      CHECK(c[2] == y.best_val_accuracy);
    }
  };
  REQUIRE(study_exists(study));
  const Study a = read_study(study);  // no study.h5: the journal alone
  same(a, 3);
  CHECK(a.sweep_seconds == 42.5);
  CHECK(a.journal_seq == 4);

  std::ofstream(journal, std::ios::app) << "0123abcd {\"seq\": 5, \"row\": {\"id\"";  // an append torn by a kill
  same(read_study(study), 3);

  write_study(study, a, 1);  // study.h5 holds every record; the journal still has them (killed before its reset)
  const Study b = read_study(study);
  same(b, 3);

  {  // a bit flipped inside the third record: the first two stand
    std::fstream f(journal, std::ios::in | std::ios::out | std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    const size_t third = text.find('\n', text.find('\n', text.find('\n') + 1) + 1) + 20;
    f.seekp(std::streamoff(third));
    f.put(text[third] == 'x' ? 'y' : 'x');
  }
  fs::remove(study);
  Study c = read_study(study);
  REQUIRE(c.rows.size() == 2);
  CHECK(c.rows[1].status == TrialStatus::pruned);  // before its promotion's record

  std::ofstream(journal, std::ios::trunc) << "00000000 {\"seq\": 0}\n";
  REQUIRE_THROWS_WITH(read_study(study), Contains("study.journal") && Contains("line 1"));
}

// A shared study's claims: a trial's first job and each ASHA promotion are
// stages of their own; a dead job's unfinished stage is taken over once.
TEST_CASE("shared study: stages claimed once, a dead job's stage taken over", "[sweep-asha]") {
  TempDir d("shared-stages");
  const std::string cfg = "[train]\nepochs = 4\n";
  SharedStudy a(d.path.string(), cfg, "a.toml", 60), b(d.path.string(), cfg, "b.toml", 60);
  REQUIRE(a.job() != b.job());
  CHECK(a.claim(5));
  CHECK(a.claim(5, 4));
  CHECK_FALSE(b.claim(5));
  CHECK_FALSE(b.claim(5, 4));
  CHECK(b.claim(5, 8));  // another stage
  CHECK(std::filesystem::exists(d.path / "shared/claims/5@4"));
  size_t pending = 0;
  // a alive: nothing to take; three stages pending (b's own counts too: it has no result yet)
  SharedStudy::Stage t = b.take_over({{5, 2}}, &pending);
  CHECK(t.trial == -1);
  CHECK(pending == 2);  // 5@4 (a's), 5@8 (b's); 5 itself has its result (reach 2)
  a.done();
  t = b.take_over({{5, 2}}, &pending);
  CHECK((t.trial == 5 && t.epochs == 4));
  CHECK(std::filesystem::exists(d.path / "shared/claims/5@4.1"));
  t = b.take_over({{5, 2}}, &pending);  // now b's own claim: nothing more to take
  CHECK(t.trial == -1);
  t = b.take_over({{5, INT64_MAX}}, &pending);  // the trial completed: every stage of it is done
  CHECK(t.trial == -1);
  CHECK(pending == 0);
  TrialRow r;
  r.status = TrialStatus::pruned, r.epochs = 2;
  CHECK(SharedStudy::reach(r) == 2);
  r.status = TrialStatus::completed;
  CHECK(SharedStudy::reach(r) == INT64_MAX);
}
