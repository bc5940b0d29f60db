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
#include "train/run_file.h"
#include "mpi/bcast_data.h"
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

}  // namespace

int train_command(const TrainOptions& opt, const Comm& comm) {
  std::vector<std::string> sets = opt.sets;
  if (!opt.device.empty()) sets.push_back("train.device=\"" + opt.device + "\"");

  // ---- config and output directory: all checked before any data is read
  RunFile rf;
  Config cfg;
  std::string dir = opt.out;
  OutputLock lock;  // rank 0 holds the output directory while it trains
  if (!opt.resume.empty()) {
    if (!dir.empty() && fs::path(dir) != fs::path(opt.resume))
      fail("train: --resume writes to its own directory; drop --out");
    dir = opt.resume;
    const std::string path = (fs::path(dir) / "run.h5").string();
    comm.root_only([&] {
      if (fs::is_directory(dir)) lock = OutputLock((fs::path(dir) / ".lock").string(), dir);
      rf = read_run_file(path);
    });
    comm.bcast_string(rf.config_text);
    comm.bcast(rf.epochs_done);
    check_resume_sets(sets);
    cfg = parse_config_text(rf.config_text, path + " (config)", sets);
    if (!opt.config.empty())
      cfg = parse_config_text(rf.config_text, path + " (config)", sets, resume_changes(opt.config, sets, cfg, path));
  } else {
    if (opt.config.empty()) fail("train: missing CONFIG (or --resume DIR)");
    cfg = load_config(opt.config, sets);
    if (dir.empty()) {
      if (comm.leader()) dir = default_out_dir(opt.config);
      comm.bcast_string(dir);
    }
    comm.root_only([&] {
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) fail("{}: cannot create output directory: {}", dir, ec.message());
      lock = OutputLock((fs::path(dir) / ".lock").string(), dir);
      const fs::path run = fs::path(dir) / "run.h5";
      if (fs::exists(run)) fail("{}: exists; continue it with --resume {} or choose another --out", run.string(), dir);
    });
  }
  const std::string run_path = (fs::path(dir) / "run.h5").string();

  const Deadline deadline = find_deadline(opt.deadline, opt.deadline_margin, comm);
  std::string why;
  const int threads = choose_threads(comm, &why);
  Placement place;
  auto be = make_backend(cfg.train, comm, &place);
  print_launch("train", comm, place, threads, why, deadline, opt.verbose);

  // ---- data and model
  const auto tb = std::chrono::steady_clock::now();
  const Data data = load_and_bcast_data(comm, cfg.data, uint64_t(cfg.train.seed));
  const double data_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
  std::optional<Trainer> trp;  // an allocation that fails on any rank fails on all (one line, status 1)
  comm.agree([&] { trp.emplace(cfg, data, *be, comm); });
  Trainer& tr = *trp;
  tr.note_broadcast(data_seconds);
  comm.root_only([&] {  // a disk too full for one checkpoint is found now, not after the first epoch
    const double bytes = run_file_bytes(tr.model(), tr.optimizer());
    std::error_code ec;
    const fs::space_info sp = fs::space(dir, ec);
    if (!ec && double(sp.available) < bytes)
      fail("{}: a checkpoint of this model needs {:.3g} MB, the file system has {:.3g} MB free", run_path, bytes / 1e6,
           double(sp.available) / 1e6);
  });
  if (opt.resume.empty()) {
    tr.init();
  } else {  // rf was read on rank 0 only: it checks, every rank resumes (collectively)
    comm.root_only([&] {
      if (rf.c != data.train.c || rf.h != data.train.h || rf.w != data.train.w)
        fail("{}: the model takes {}x{}x{} inputs, the data has {}x{}x{}", rf.path, rf.c, rf.h, rf.w, data.train.c,
             data.train.h, data.train.w);
    });
    tr.resume(rf);
  }
  if (comm.leader()) {
    fmt::print("data: {} train, {} validation, {} test samples of {}x{}x{} ({}), {} classes\n", data.train_idx.size(),
               data.val_idx.size(), data.test.n, data.train.c, data.train.h, data.train.w, data.train.source,
               cfg.data.classes);
    fmt::print("model: {}, {} parameters; {} lr {} batch {}; out {}\n", cfg.model.preset, tr.model().num_params(),
               to_string(cfg.train.optimizer), cfg.train.lr, cfg.train.batch_size, run_path);
    if (comm.size() > 1 || opt.verbose) fmt::print("{}\n", tr.exchange_description());
    if (opt.verbose) fmt::print("{}\n", tr.model().summary());
    if (tr.position().step > 0)
      fmt::print("resuming in epoch {} after step {}\n", tr.epochs_done() + 1, tr.position().step);
    else if (tr.epochs_done() > 0)
      fmt::print("resuming after epoch {}\n", tr.epochs_done());
    std::fflush(stdout);
  }
  if (tr.epochs_done() >= cfg.train.epochs) {
    if (comm.leader())
      fmt::print("already trained for {} epochs (train.epochs = {}); nothing to do\n", tr.epochs_done(),
                 cfg.train.epochs);
    return 0;
  }

  Provenance prov{comm.size(), threads, opt.command, place.bindings};
  tr.set_stop_check([&deadline] { return stop_requested(deadline); });
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = tr.epochs_done();
  const int64_t last = opt.stop_after > 0 ? std::min(cfg.train.epochs, first + opt.stop_after) : cfg.train.epochs;
  while (tr.epochs_done() < last) {
    bool finished = false;
    try {
      finished = tr.run_epoch();
    } catch (const Diverged& e) {
      if (comm.leader())
        fmt::print(stderr, "ranksweep: training diverged: {}; {}\n", e.what(),
                   tr.epochs_done() ? run_path + " keeps the last good epoch" : "nothing was written");
      return 1;
    }
    if (!finished) {  // a signal or the deadline: checkpoint at this step, then "requeue me"
      comm.root_only([&] {
        write_run_file(run_path, cfg.text, tr.model(), tr.optimizer(), data.mean, data.inv_std, data.class_names,
                       tr.history(), prov, tr.position());
      });
      if (comm.leader()) {
        fmt::print(
            "stopped by {} in epoch {} after step {} of {}; checkpoint {}; continue with: ranksweep train "
            "--resume {}\n",
            stop_cause(), tr.epochs_done() + 1, tr.position().step, tr.steps_per_epoch(), run_path, dir);
        std::fflush(stdout);
      }
      return kExitRequeue;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (comm.leader()) print_epoch(tr.history(), cfg.train.epochs, elapsed, tr.epochs_done() - first, opt.verbose);
    if (comm.leader() && tr.model().profiling())
      fmt::print("layer times on rank 0 (RANKSWEEP_PROFILE):\n{}\n", tr.model().profile_table());
    comm.root_only(  // a write error (a full disk) on rank 0 ends every rank, not only rank 0
        [&] {
          write_run_file(run_path, cfg.text, tr.model(), tr.optimizer(), data.mean, data.inv_std, data.class_names,
                         tr.history(), prov);
        });
    if (tr.epochs_done() < last && tr.stop_agreed()) {  // the epoch's checkpoint is written: nothing more to save
      if (comm.leader())
        fmt::print("stopped by {} after epoch {}; continue with: ranksweep train --resume {}\n", stop_cause(),
                   tr.epochs_done(), dir);
      return kExitRequeue;
    }
  }
  if (comm.leader() && last < cfg.train.epochs)
    fmt::print("stopped after epoch {} of {}; continue with: ranksweep train --resume {}\n", last, cfg.train.epochs,
               dir);
  if (comm.leader()) fmt::print("wrote {}\n", run_path);
  return 0;
}

}  // namespace rs
