#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "app/commands.h"
#include "app/launch.h"
#include "backend/backend.h"
#include "error.h"
#include "io/output_dir.h"
#include "io/progress.h"
#include "io/trace.h"
#include "mpi/bcast_data.h"
#include "train/run_file.h"
#include "train/stop.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace rs {

namespace {

// `elapsed` covers `ran` epochs of this invocation (a resumed run counts anew).
void print_epoch(const History& h, int64_t epochs, double elapsed, int64_t ran, bool verbose) {
  auto last = [&](const char* k) { return h.cols.at(k).back(); };
  const int64_t e = int64_t(last("epoch"));
  const double left = elapsed / double(ran) * double(epochs - e);
  fmt::print("epoch {:>{}}/{}  loss {:.4f}  train {}  val {}  test {}  {:.0f} img/s  elapsed {}  left {}\n", e,
             int(std::to_string(epochs).size()), epochs, last("train_loss"), format_percent(last("train_accuracy")),
             format_percent(last("val_accuracy")), format_percent(last("test_accuracy")), last("images_per_second"),
             format_seconds(elapsed), format_seconds(left));
  if (verbose)
    fmt::print(
        "  phases (rank 0): data {:.2f}s  forward {:.2f}s  backward {:.2f}s  allreduce wait {:.2f}s  "
        "optimizer {:.2f}s  broadcast {:.2f}s  eval {:.2f}s\n",
        last("time_data"), last("time_forward"), last("time_backward"), last("time_allreduce"), last("time_optimizer"),
        last("time_broadcast"), last("eval_seconds"));
  std::fflush(stdout);
}

// A resumed run is the same run: --set (or a CONFIG given with --resume) may
// change how it runs, and how long, but not what it computes (the split, the
// seed, the model, the optimizer).
const std::vector<std::string> kMayChangeOnResume = {"train.epochs",
                                                     "train.device",
                                                     "train.deterministic",
                                                     "train.cudnn_workspace_mb",
                                                     "train.allreduce_overlap",
                                                     "train.shard_optimizer",
                                                     "data.train_images",
                                                     "data.train_labels",
                                                     "data.test_images",
                                                     "data.test_labels",
                                                     "data.path",
                                                     "data.test_path"};

bool may_change_on_resume(const std::string& key) {
  return std::find(kMayChangeOnResume.begin(), kMayChangeOnResume.end(), key) != kMayChangeOnResume.end();
}

void check_resume_sets(const std::vector<std::string>& sets) {
  for (const std::string& s : sets)
    if (!may_change_on_resume(s.substr(0, s.find('='))))
      fail(
          "--set {}: cannot change on --resume (it would not be the same run); these may: {} (files moved: the "
          "data paths)",
          s, fmt::format("{}", fmt::join(kMayChangeOnResume, ", ")));
}

// CONFIG given with --resume: the run's own config, with the values of the
// keys that may change taken from CONFIG; any other difference is exit 2
// naming the first (a job script resubmitted with an edited CONFIG).
Overrides resume_changes(const std::string& config, const std::vector<std::string>& sets, const Config& run,
                         const std::string& run_path) {
  const Config mine = load_config(config, sets);
  Overrides changes;
  for (const KeyDifference& d : differences(mine.values, run.values)) {
    if (!may_change_on_resume(d.key) || d.a.empty())
      fail("{}: not the config of the run in {} ({}); resume without CONFIG, or choose another --out", config, run_path,
           d.text(config, "the run"));
    changes.emplace_back(d.key, *config_value_at(mine.text, d.key));
  }
  return changes;
}

// A run's config and output directory, all checked before any data is read;
// rank 0 holds the directory's lock while it trains.
struct RunStart {
  Config cfg;
  RunFile rf;  // --resume: the run file, read on rank 0 only
  std::string dir, run_path;
  OutputLock lock;
};

RunStart open_run(const TrainOptions& opt, const std::vector<std::string>& sets, const Comm& comm) {
  RunStart r;
  r.dir = opt.out;
  if (!opt.resume.empty()) {
    if (!r.dir.empty() && fs::path(r.dir) != fs::path(opt.resume))
      fail("train: --resume writes to its own directory; drop --out");
    r.dir = opt.resume;
    const std::string path = (fs::path(r.dir) / "run.h5").string();
    comm.root_only([&] {
      if (fs::is_directory(r.dir)) r.lock = OutputLock((fs::path(r.dir) / ".lock").string(), r.dir);
      r.rf = read_run_file(path);
    });
    comm.bcast_string(r.rf.config_text);
    comm.bcast(r.rf.epochs_done);
    check_resume_sets(sets);
    r.cfg = parse_config_text(r.rf.config_text, path + " (config)", sets);
    if (!opt.config.empty())
      r.cfg =
          parse_config_text(r.rf.config_text, path + " (config)", sets, resume_changes(opt.config, sets, r.cfg, path));
  } else {
    if (opt.config.empty()) fail("train: missing CONFIG (or --resume DIR)");
    r.cfg = load_config(opt.config, sets);
    if (r.dir.empty()) {
      if (comm.leader()) r.dir = default_out_dir(opt.config);
      comm.bcast_string(r.dir);
    }
    comm.root_only([&] {
      std::error_code ec;
      fs::create_directories(r.dir, ec);
      if (ec) fail("{}: cannot create output directory: {}", r.dir, ec.message());
      r.lock = OutputLock((fs::path(r.dir) / ".lock").string(), r.dir);
      const fs::path run = fs::path(r.dir) / "run.h5";
      if (fs::exists(run))
        fail("{}: exists; continue it with --resume {} or choose another --out", run.string(), r.dir);
    });
  }
  r.run_path = (fs::path(r.dir) / "run.h5").string();
  return r;
}

// A disk too full for one checkpoint is found now, not after the first epoch.
void check_space(Trainer& tr, const RunStart& r, const Comm& comm) {
  comm.root_only([&] {
    const double bytes = run_file_bytes(tr.model(), tr.optimizer());
    std::error_code ec;
    const fs::space_info sp = fs::space(r.dir, ec);
    if (!ec && double(sp.available) < bytes)
      fail("{}: a checkpoint of this model needs {:.3g} MB, the file system has {:.3g} MB free", r.run_path,
           bytes / 1e6, double(sp.available) / 1e6);
  });
}

// Fresh parameters, or the run file's (read on rank 0: it checks, every rank resumes).
void init_or_resume(Trainer& tr, const RunStart& r, bool resume, const Data& data, const Comm& comm) {
  if (!resume) return tr.init();
  comm.root_only([&] {
    if (r.rf.c != data.train.c || r.rf.h != data.train.h || r.rf.w != data.train.w)
      fail("{}: the model takes {}x{}x{} inputs, the data has {}x{}x{}", r.rf.path, r.rf.c, r.rf.h, r.rf.w,
           data.train.c, data.train.h, data.train.w);
  });
  tr.resume(r.rf);
}

void print_start(Trainer& tr, const RunStart& r, const Data& data, bool verbose, const Comm& comm) {
  if (!comm.leader()) return;
  const Config& cfg = r.cfg;
  fmt::print("data: {} train, {} validation, {} test samples of {}x{}x{} ({}), {} classes\n", data.train_idx.size(),
             data.val_idx.size(), data.test.n, data.train.c, data.train.h, data.train.w, data.train.source,
             cfg.data.classes);
  fmt::print("model: {}, {} parameters; {} lr {} batch {}; out {}\n", cfg.model.preset, tr.model().num_params(),
             to_string(cfg.train.optimizer), cfg.train.lr, cfg.train.batch_size, r.run_path);
  if (comm.size() > 1 || verbose) fmt::print("{}\n", tr.exchange_description());
  if (verbose) fmt::print("{}\n", tr.model().summary());
  if (tr.position().step > 0)
    fmt::print("resuming in epoch {} after step {}\n", tr.epochs_done() + 1, tr.position().step);
  else if (tr.epochs_done() > 0)
    fmt::print("resuming after epoch {}\n", tr.epochs_done());
  std::fflush(stdout);
}

// The epochs this invocation trains, a checkpoint after each; the exit status.
int train_epochs(Trainer& tr, const RunStart& r, const Data& data, const TrainOptions& opt, const Provenance& prov,
                 const Comm& comm) {
  const Config& cfg = r.cfg;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = tr.epochs_done();
  const int64_t last = opt.stop_after > 0 ? std::min(cfg.train.epochs, first + opt.stop_after) : cfg.train.epochs;
  Trainer::Ended end;
  try {
    end = tr.run_epochs(
        last,
        [&] {  // a write error (a full disk) on rank 0 ends every rank, not only rank 0
          comm.root_only([&] {
            write_run_file(r.run_path, cfg.text, tr.model(), tr.optimizer(), data.mean, data.inv_std, data.class_names,
                           tr.history(), prov, tr.position());
          });
        },
        [&] {
          const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (!comm.leader()) return;
          print_epoch(tr.history(), cfg.train.epochs, elapsed, tr.epochs_done() - first, opt.verbose);
          if (tr.model().profiling())
            fmt::print("layer times on rank 0 (RANKSWEEP_PROFILE):\n{}\n", tr.model().profile_table());
        });
  } catch (const Diverged& e) {
    if (comm.leader())
      fmt::print(stderr, "ranksweep: training diverged: {}; {}\n", e.what(),
                 tr.epochs_done() ? r.run_path + " keeps the last good epoch" : "nothing was written");
    return 1;
  }
  if (!comm.leader()) return end == Trainer::Ended::done ? 0 : kExitRequeue;
  switch (end) {
    case Trainer::Ended::stopped_in_epoch:
      fmt::print(
          "stopped by {} in epoch {} after step {} of {}; checkpoint {}; continue with: ranksweep train "
          "--resume {}\n",
          stop_cause(), tr.epochs_done() + 1, tr.position().step, tr.steps_per_epoch(), r.run_path, r.dir);
      break;
    case Trainer::Ended::stopped_after_epoch:
      fmt::print("stopped by {} after epoch {}; continue with: ranksweep train --resume {}\n", stop_cause(),
                 tr.epochs_done(), r.dir);
      break;
    case Trainer::Ended::done:
      if (last < cfg.train.epochs)
        fmt::print("stopped after epoch {} of {}; continue with: ranksweep train --resume {}\n", last, cfg.train.epochs,
                   r.dir);
      fmt::print("wrote {}\n", r.run_path);
  }
  std::fflush(stdout);
  return end == Trainer::Ended::done ? 0 : kExitRequeue;
}

}  // namespace

int train_command(const TrainOptions& opt, const Comm& comm) {
  std::vector<std::string> sets = opt.sets;
  if (!opt.device.empty()) sets.push_back("train.device=\"" + opt.device + "\"");
  if (!opt.trace.empty()) start_trace(opt.trace, comm);
  RunStart r = open_run(opt, sets, comm);
  const Config& cfg = r.cfg;

  const Deadline deadline = find_deadline(opt.deadline, opt.deadline_margin, comm);
  std::string why;
  const int threads = choose_threads(comm, &why);
  Placement place;
  auto be = make_backend(cfg.train, comm, &place);
  print_launch("train", comm, place, threads, why, deadline, opt.verbose);

  const auto tb = std::chrono::steady_clock::now();
  const Data data = load_and_bcast_data(comm, cfg.data, uint64_t(cfg.train.seed));
  const double data_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
  std::optional<trace::Scope> setup(std::in_place, "set up");
  std::optional<Trainer> trp;  // an allocation that fails on any rank fails on all (one line, status 1)
  comm.agree([&] { trp.emplace(cfg, data, *be, comm); });
  Trainer& tr = *trp;
  tr.note_broadcast(data_seconds);
  check_space(tr, r, comm);
  init_or_resume(tr, r, !opt.resume.empty(), data, comm);
  setup.reset();
  print_start(tr, r, data, opt.verbose, comm);
  if (tr.epochs_done() >= cfg.train.epochs) {
    if (comm.leader())
      fmt::print("already trained for {} epochs (train.epochs = {}); nothing to do\n", tr.epochs_done(),
                 cfg.train.epochs);
    return 0;
  }
  tr.set_stop_check([&deadline] { return stop_requested(deadline); });
  const int status =
      train_epochs(tr, r, data, opt, Provenance{comm.size(), threads, opt.command, place.bindings}, comm);
  if (!opt.trace.empty()) write_trace(opt.trace, comm);
  return status;
}

}  // namespace rs
