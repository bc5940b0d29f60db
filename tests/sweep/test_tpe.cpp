// TPE search on synthetic objectives, without training: the sweep's own
// policy and search (sweep/engine.h) with trials scored by a function.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "error.h"
#include "helpers.h"
#include "sweep/engine.h"
#include "sweep/tpe.h"

using namespace rs;
using namespace rs::test;
using Catch::Matchers::Contains;

namespace {

const std::string kBase2 = "[train]\nx = 0.0\ny = 0.0\n";
const std::string kSpace2 = R"(
[sweep.space]
"train.x" = { distribution = "uniform", low = -5.0, high = 5.0 }
"train.y" = { distribution = "uniform", low = -5.0, high = 5.0 }
)";

const std::string kBase4 = "[train]\nx = 0.0\nlr = 0.1\nn = 8\nopt = 'sgd'\n";
const std::string kSpace4 = R"(
[sweep.space]
"train.x" = { distribution = "uniform", low = -3.0, high = 3.0 }
"train.lr" = { distribution = "log_uniform", low = 1e-5, high = 1.0 }
"train.n" = { distribution = "int_uniform", low = 1, high = 64 }
"train.opt" = ["sgd", "adam", "adamw", "rmsprop", "adagrad"]
)";

double get(const Overrides& v, const std::string& key) {
  for (const auto& [k, x] : v)
    if (k == key) return x.number().value();
  FAIL("no " << key);
  return 0;
}

std::string text(const Overrides& v) {
  std::string s;
  for (const auto& [k, x] : v) s += k + "=" + x.text() + " ";
  return s;
}

// Maximised: 1 at (1.3, -0.7).
double quadratic(const Overrides& v, int64_t) {
  const double x = get(v, "train.x") - 1.3, y = get(v, "train.y") + 0.7;
  return 1 - (x * x + y * y) / 50;
}

// Maximised: 1 at x = 0.5, lr = 1e-2, n = 40, opt = "adam".
double four_d(const Overrides& v, int64_t) {
  std::string opt;
  for (const auto& [k, x] : v)
    if (k == "train.opt") opt = x.text();
  const double x = get(v, "train.x") - 0.5, l = std::log10(get(v, "train.lr")) + 2, n = (get(v, "train.n") - 40) / 16;
  return 1 - (x * x + l * l + n * n + (opt == "'adam'" ? 0 : 3)) / 20;
}

SweepConfig sweep_of(const std::string& method, int64_t trials, int64_t seed, const std::string& space,
                     const std::string& extra = "") {
  return parse_sweep(
      fmt::format("[sweep]\nmethod = \"{}\"\ntrials = {}\nseed = {}\n{}\n{}", method, trials, seed, extra, space),
      "test.toml");
}

// Best validation value among the first n results.
double best_of(const Study& s, size_t n) {
  double b = -1e300;
  for (size_t i = 0; i < std::min(n, s.rows.size()); ++i) b = std::max(b, s.rows[i].best_val_accuracy);
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Every value inside its dimension.
void check_inside(const SweepConfig& s, const Overrides& v) {
  for (const auto& [k, x] : v) {
    const auto d = std::find_if(s.space.begin(), s.space.end(), [&](const Dimension& d) { return d.key == k; });
    REQUIRE(d != s.space.end());
    INFO(k << " = " << x.text());
    if (d->kind == Distribution::values) {
      CHECK(std::find(d->values.begin(), d->values.end(), x) != d->values.end());
    } else {
      CHECK(*x.number() >= d->low);
      CHECK(*x.number() <= d->high);
      if (d->kind == Distribution::int_uniform) CHECK(x.node().is_integer());
    }
  }
}

}  // namespace

TEST_CASE("TPE beats random search on synthetic objectives (median best of 5 seeds after 40 trials)", "[tpe]") {
  struct Case {
    const char* name;
    std::string base, space;
    Objective f;
  };
  for (const Case& c :
       {Case{"2-D quadratic", kBase2, kSpace2, quadratic}, Case{"4-D, categorical", kBase4, kSpace4, four_d}}) {
    std::vector<double> tpe, random;
    for (int64_t seed = 1; seed <= 5; ++seed) {
      for (const char* method : {"tpe", "random"}) {
        const SweepConfig s = sweep_of(method, 40, seed, c.space);
        const Simulation sim = simulate_sweep(s, c.base, 1, 1, c.f);
        REQUIRE(sim.study.rows.size() == 41);
        for (const auto& [id, v] : sim.started) check_inside(s, v);
        (std::string(method) == "tpe" ? tpe : random).push_back(best_of(sim.study, 40));
      }
    }
    INFO(c.name << ": TPE median best " << median(tpe) << ", random " << median(random));
    CHECK(median(tpe) > median(random));
  }
}

TEST_CASE("TPE start-up trials are random search's; later ones come from the model", "[tpe]") {
  const SweepConfig tpe = sweep_of("tpe", 20, 3, kSpace2, "[sweep.tpe]\nstartup_trials = 6\n");
  const SweepConfig random = sweep_of("random", 20, 3, kSpace2);
  const Simulation a = simulate_sweep(tpe, kBase2, 1, 1, quadratic),
                   b = simulate_sweep(random, kBase2, 1, 1, quadratic);
  REQUIRE(a.started.size() == 21);
  // trial 0 and the five random start-up trials give 6 results; trial 6 is the first proposal
  for (size_t i = 0; i < 6; ++i) CHECK(text(a.started[i].second) == text(b.started[i].second));
  for (size_t i = 6; i < 21; ++i) CHECK(text(a.started[i].second) != text(b.started[i].second));
}

TEST_CASE("TPE: groups asking at once get distinct proposals inside the space", "[tpe]") {
  for (const std::string& space : {kSpace2, kSpace4}) {
    const SweepConfig s = sweep_of("tpe", 40, 7, space, "[sweep.tpe]\nstartup_trials = 5\n");
    const std::string& base = space == kSpace2 ? kBase2 : kBase4;
    const Simulation sim = simulate_sweep(s, base, 4, 3, space == kSpace2 ? quadratic : four_d);
    REQUIRE(sim.started.size() == 41);
    std::set<std::string> seen;
    for (const auto& [id, v] : sim.started) {
      check_inside(s, v);
      CHECK(seen.insert(text(v)).second);
    }
  }
  // Four proposals in a row with no result in between: the running ones count as bad (constant liar).
  const SweepConfig s = sweep_of("tpe", 40, 7, kSpace2, "[sweep.tpe]\nstartup_trials = 5\n");
  Search search(s, kBase2);
  const Overrides config{{"train.x", TomlValue(0.0)}, {"train.y", TomlValue(0.0)}};
  for (int64_t t = 0; t < 8; ++t) {
    const Overrides p = search.start(t);
    search.end(t, TrialStatus::completed, quadratic(t ? p : config, 1));
  }
  std::set<std::string> at_once;
  for (int64_t t = 8; t < 12; ++t) at_once.insert(text(search.start(t)));
  CHECK(at_once.size() == 4);
}

TEST_CASE("TPE with ASHA: a resumed sweep proposes what an uninterrupted one would have", "[tpe]") {
  TempDir d("tpe");
  const std::string extra = "[sweep.tpe]\nstartup_trials = 5\n[sweep.asha]\nmin_epochs = 1\nreduction = 3\n";
  for (const std::string& space : {kSpace2, kSpace4}) {
    const std::string& base = space == kSpace2 ? kBase2 : kBase4;
    const Objective f = [&](const Overrides& v, int64_t e) {  // improves with epochs
      return (space == kSpace2 ? quadratic(v, e) : four_d(v, e)) - 0.1 / double(e);
    };
    const SweepConfig s = sweep_of("tpe", 30, 11, space, extra);
    const Simulation whole = simulate_sweep(s, base, 1, 9, f);
    Simulation first = simulate_sweep(s, base, 1, 9, f, 17);
    // through the study file, as a real resume reads it (integers come back as floats)
    first.study.config_text = base;
    for (const Dimension& dim : s.space) first.study.keys.push_back(dim.key);
    const std::string path = d / "study.h5";
    write_study(path, first.study, 1);
    const Simulation rest = simulate_sweep(s, base, 1, 9, f, SIZE_MAX, read_study(path));
    std::vector<std::string> a, b;
    for (const auto& [id, v] : whole.started) a.push_back(std::to_string(id) + ": " + text(v));
    for (const Simulation* p : {static_cast<const Simulation*>(&first), &rest})
      for (const auto& [id, v] : p->started) b.push_back(std::to_string(id) + ": " + text(v));
    CHECK(first.started.size() < whole.started.size());
    CHECK(a == b);
    CHECK(rest.study.rows.size() == whole.study.rows.size());
  }
}

TEST_CASE("TPE: enqueued trials first and once; warm start seeds the model, its keys checked", "[tpe]") {
  const std::string enq = "[[sweep.enqueue]]\n\"train.x\" = 1.25\n[[sweep.enqueue]]\n\"train.y\" = -0.5\n";
  const SweepConfig s = sweep_of("tpe", 12, 5, kSpace2, enq);
  const Simulation sim = simulate_sweep(s, kBase2, 2, 1, quadratic);
  REQUIRE(sim.started.size() == 15);
  CHECK(sim.started[1].first == 1);
  CHECK(text(sim.started[1].second) == "train.x=1.25 ");
  CHECK(sim.started[2].first == 2);
  CHECK(text(sim.started[2].second) == "train.y=-0.5 ");
  std::set<int64_t> ids;
  for (const auto& [id, v] : sim.started) CHECK(ids.insert(id).second);

  // warm start: the old study's finished trials are observations before any of this sweep's
  const SweepConfig w = sweep_of("tpe", 12, 5, kSpace2, "[sweep.tpe]\nstartup_trials = 10\n");
  Search search(w, kBase2);
  Study old = sim.study;
  old.keys = {"train.x", "train.y"};
  search.warm_start(old, "old.h5");
  CHECK(search.observed() == 15);
  // with 15 results in hand, trial 1 is a proposal, not the random start-up draw
  CHECK(text(search.start(1)) != text(make_trial(w, 1).params));

  Study wrong = old;
  wrong.keys = {"train.x", "train.z"};
  CHECK_THROWS_WITH(Search(w, kBase2).warm_start(wrong, "old.h5"), Contains("old.h5") && Contains("train.z"));
  wrong.keys = {"train.x"};
  CHECK_THROWS_WITH(Search(w, kBase2).warm_start(wrong, "old.h5"), Contains("train.y"));
  CHECK_THROWS_WITH(sweep_of("random", 5, 1, kSpace2, "warm_start = \"old.h5\""), Contains("tpe"));
}

TEST_CASE("TPE weights and coordinates", "[tpe]") {
  CHECK(tpe_weights(3) == std::vector<double>{1, 1, 1});
  const std::vector<double> w = tpe_weights(30);
  CHECK(w.front() == Approx(1.0 / 30));
  CHECK(w[4] == Approx(1.0));
  CHECK(std::is_sorted(w.begin(), w.end()));
  const SweepConfig s = sweep_of("tpe", 5, 1, kSpace4);
  auto dim = [&](const char* key) {
    return *std::find_if(s.space.begin(), s.space.end(), [&](const Dimension& d) { return d.key == key; });
  };
  CHECK(tpe_coordinate(dim("train.n"), TomlValue(int64_t(16))) == Approx(16));
  CHECK(tpe_coordinate(dim("train.n"), TomlValue(16.0)) == Approx(16));  // as a study file holds it
  CHECK(!tpe_coordinate(dim("train.n"), TomlValue(int64_t(65))));
  CHECK(tpe_coordinate(dim("train.lr"), TomlValue(1e-2)) == Approx(std::log(1e-2)));
  CHECK(tpe_coordinate(dim("train.opt"), TomlValue(std::string("adamw"))) == 2);
  CHECK(!tpe_coordinate(dim("train.opt"), TomlValue(std::string("lamb"))));
}
