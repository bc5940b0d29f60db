// ranksweep sweep: the world is split into rank groups of G ranks; each group
// trains one job (a trial, or a promoted trial's next rung) at a time,
// data-parallel over its own communicator, on one device context made once
// for the whole sweep, and asks for the next job when done (dynamic
// scheduling). World rank 0 trains in group 0 and also runs the coordinator
// (sweep/coordinator.h) on a thread of its own, on duplicates of the world
// communicator, so no training step waits for it. The data is read once and
// shared per node for the whole sweep.
#include <fmt/ranges.h>

#include <exception>
#include <filesystem>
#include <thread>

#include "app/commands.h"
#include "app/launch.h"
#include "error.h"
#include "io/output_dir.h"
#include "io/progress.h"
#include "mpi/allreduce.h"
#include "mpi/bcast_data.h"
#include "sweep/coordinator.h"
#include "sweep/group.h"
#include "sweep/search.h"
#include "sweep/space.h"
#include "sweep/study.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

void print_start(const Coordinator& c, const SweepConfig& sweep, const Data& data, int groups, int G, int threads,
                 const std::string& dev, const std::string& study_path) {
  fmt::print(
      "sweep: {} trials ({} {} search{}), {} group(s) of {} rank(s) x {} thread(s) on {}; data {} train / {} "
      "validation / {} test; out {}\n",
      c.total(), sweep.method, sweep.space.size() == 1 ? "1-D" : fmt::format("{}-D", sweep.space.size()),
      sweep.asha ? fmt::format(", ASHA min {} epoch(s), reduction {}", sweep.min_epochs, sweep.reduction) : "", groups,
      G, threads, dev, data.train_idx.size(), data.val_idx.size(), data.test.n, study_path);
  for (int64_t id : c.skipped())
    fmt::print("grid point {} ({}) is the default trial 0: not run twice\n", id, make_trial(sweep, id).text());
  if (c.resumed()) fmt::print("resuming: {} trial(s) already in {}\n", c.resumed(), study_path);
  std::fflush(stdout);
}

void print_end(const Coordinator& c, const std::string& study_path) {
  const Study& s = c.study();
  const int b = best_row(s);
  int d = -1;
  for (size_t i = 0; i < s.rows.size(); ++i)
    if (s.rows[i].id == 0) d = int(i);
  fmt::print("sweep {} after {}: {} trials in {}\n", c.incomplete() ? "stopped" : "done", format_seconds(c.elapsed()),
             s.rows.size(), study_path);
  if (b >= 0)
    fmt::print("best: trial {} val {} test {}", s.rows[b].id, format_percent(s.rows[b].best_val_accuracy),
               format_percent(s.rows[b].test_accuracy));
  if (b >= 0 && d >= 0)
    fmt::print("; default (trial 0): val {} test {}", format_percent(s.rows[d].best_val_accuracy),
               format_percent(s.rows[d].test_accuracy));
  fmt::print("\n");
}

}  // namespace

int sweep_command(const SweepOptions& opt, const Comm& world) {
  // ---- config, space, output directory: checked before anything is read
  const Config base = load_config(opt.config, opt.sets);
  SweepConfig sweep = parse_sweep(base.text, opt.config);
  const std::vector<std::string> notes = validate_space(sweep, base.text, opt.config);
  if (world.leader())
    for (const std::string& n : notes) fmt::print("sweep: {}\n", n);
  if (opt.group_size > 0) sweep.group_size = opt.group_size;
  const int G = int(sweep.group_size);
  if (world.size() % G)
    fail("--group-size {}: does not divide the {} ranks (every group must have the same size)", G, world.size());
  const int groups = world.size() / G;
  int level = 0;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_MULTIPLE)
    fail(
        "sweep: this MPI library was started without MPI_THREAD_MULTIPLE (the sweep's coordinator runs on a thread "
        "of rank 0)");
  std::string dir = opt.out;
  if (dir.empty() && world.leader()) dir = default_out_dir(opt.config);
  world.bcast_string(dir);
  const std::string study_path = (fs::path(dir) / "study.h5").string();
  Study previous, warm;
  OutputLock lock;  // rank 0 holds the sweep's directory until the sweep ends
  world.root_only([&] {
    std::error_code ec;
    fs::create_directories(fs::path(dir) / "trials", ec);
    if (ec) fail("{}: cannot create output directory: {}", dir, ec.message());
    lock = OutputLock((fs::path(dir) / ".lock").string(), dir);
    if (study_exists(study_path)) {
      previous = read_study(study_path);
      for (const TrialRow& r : previous.rows)
        if (retry_on_resume(r)) {
          fmt::print("trial {} runs again: {}\n", r.id, r.message);
          previous.curves.erase(r.id);
        }
      std::erase_if(previous.rows, retry_on_resume);
      if (previous.config_text != base.text) {
        std::vector<KeyDifference> d;
        try {
          d = differences(toml::parse(previous.config_text), toml::parse(base.text));
        } catch (const toml::parse_error&) {  // a damaged study's config: just "different"
        }
        fail(
            "{}: holds a sweep of a different config ({}); resume with the same config and --set, or choose another "
            "--out",
            study_path, d.empty() ? std::string("formatted differently") : d[0].text("the study", opt.config));
      }
    }
    if (!sweep.warm_start.empty()) {
      warm = read_study(sweep.warm_start);
      // its keys: exit 2 before any work
      if (const int64_t n = Search(sweep, base.text).warm_start(warm, sweep.warm_start))
        fmt::print("warm start: {} of the {} trials of {} lie outside this sweep.space in some key (unknown there)\n",
                   n, warm.rows.size(), sweep.warm_start);
    }
  });
  const Deadline deadline = find_deadline(opt.deadline, opt.deadline_margin, world);
  std::string why;
  const int threads = choose_threads(world, &why);

  // ---- the data, once for the whole sweep
  const Data data = load_and_bcast_data(world, base.data, uint64_t(base.train.seed));

  // ---- rank groups, each with one device context for all its jobs
  MPI_Comm group_comm;
  Channels ch;
  MPI_Comm_split(world.raw(), world.rank() / G, world.rank(), &group_comm);
  MPI_Comm_dup(world.raw(), &ch.up);
  MPI_Comm_dup(world.raw(), &ch.down);
  const Comm gc(group_comm);
  Placement place;
  const std::unique_ptr<Backend> be = make_backend(base.train, world, &place);  // by place in the whole job
  print_launch("sweep", world, place, threads, why, deadline, opt.verbose);
  const std::unique_ptr<GradComm> grads = make_grad_comm(*be, gc);

  // ---- the coordinator: rank 0, its own thread
  std::unique_ptr<Coordinator> coord;
  msg::MpiLink link(ch);
  std::thread coord_thread;
  if (world.leader()) {
    coord = std::make_unique<Coordinator>(sweep, std::move(previous), warm, dir, base.text, groups, world.size(), link,
                                          deadline);
    print_start(*coord, sweep, data, groups, G, threads, be->name(), study_path);
    coord_thread = std::thread([&coord] {
      try {
        coord->run();
      } catch (const std::exception& e) {  // the study cannot be written, ...: nobody can go on
        abort_job(std::string("sweep coordinator: ") + e.what());
      }
    });
  }
  const GroupSetup setup{.sweep = sweep,
                         .base_text = base.text,
                         .origin = opt.config,
                         .dir = dir,
                         .data = data,
                         .group = world.rank() / G,
                         .threads = threads,
                         .device_binding = place.bindings,
                         .local_stop = [&deadline] { return stop_requested(deadline); }};
  run_group(setup, gc, *be, *grads, ch);
  world.barrier_idle();  // every group is done, so the coordinator has finished
  int status = 0;
  if (coord) {
    coord_thread.join();
    print_end(*coord, study_path);
    status = coord->incomplete() ? kExitRequeue : 0;
    if (status)
      fmt::print("sweep stopped early ({}); run the same command again (or requeue the job) to continue\n",
                 coord->stop_reason());
  }
  world.bcast(status);
  MPI_Comm_free(&group_comm);
  MPI_Comm_free(&ch.up);
  MPI_Comm_free(&ch.down);
  return status;
}

}  // namespace rs
