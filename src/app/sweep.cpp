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
#include <malloc.h>
#include <thread>

#include "app/commands.h"
#include "app/launch.h"
#include "error.h"
#include "io/output_dir.h"
#include "io/progress.h"
#include "io/trace.h"
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

// The config and its search space, checked before anything is read; the
// group size must divide the ranks.
struct Plan {
  Config base;
  SweepConfig sweep;
  int G = 1, groups = 1;
};

Plan plan_sweep(const SweepOptions& opt, const Comm& world) {
  Plan p{load_config(opt.config, opt.sets), {}};
  p.sweep = parse_sweep(p.base.text, opt.config);
  const std::vector<std::string> notes = validate_space(p.sweep, p.base.text, opt.config);
  if (world.leader())
    for (const std::string& n : notes) fmt::print("sweep: {}\n", n);
  if (opt.group_size > 0) p.sweep.group_size = opt.group_size;
  p.G = int(p.sweep.group_size);
  if (world.size() % p.G)
    fail("--group-size {}: does not divide the {} ranks (every group must have the same size)", p.G, world.size());
  p.groups = world.size() / p.G;
  int level = 0;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_MULTIPLE)
    fail(
        "sweep: this MPI library was started without MPI_THREAD_MULTIPLE (the sweep's coordinator runs on a thread "
        "of rank 0)");
  return p;
}

// Rank 0: the study sweep.warm_start names, its keys checked (exit 2 before any work).
void read_warm_start(const Plan& p, Study& warm) {
  if (p.sweep.warm_start.empty()) return;
  warm = read_study(p.sweep.warm_start);
  if (const int64_t n = Search(p.sweep, p.base.text).warm_start(warm, p.sweep.warm_start))
    fmt::print("warm start: {} of the {} trials of {} lie outside this sweep.space in some key (unknown there)\n", n,
               warm.rows.size(), p.sweep.warm_start);
}

// Rank 0, --shared: this job's part of the study (its own directory, locked);
// the config must be the study's.
std::unique_ptr<SharedStudy> open_shared(const SweepOptions& opt, const Plan& p, const std::string& dir,
                                         OutputLock& lock, Study& warm) {
  if (!fs::exists(fs::path(dir) / "shared") && study_exists((fs::path(dir) / "study.h5").string()))
    fail("{}: holds the study of a single job; resume it without --shared, or choose another --out", dir);
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "trials", ec);
  if (ec) fail("{}: cannot create output directory: {}", dir, ec.message());
  auto shared = std::make_unique<SharedStudy>(dir, p.base.text, opt.config, opt.shared_timeout);
  lock = OutputLock((fs::path(shared->study_dir()) / ".lock").string(), shared->study_dir());
  fmt::print("sweep: job {} joins the shared study in {}\n", shared->job(), dir);
  read_warm_start(p, warm);
  return shared;
}

// Rank 0: the sweep's directory (locked until the sweep ends), the study
// being resumed (its failed trials to run again) and the warm start's.
void open_study(const SweepOptions& opt, const Plan& p, const std::string& dir, OutputLock& lock, Study& previous,
                Study& warm) {
  const std::string study_path = (fs::path(dir) / "study.h5").string();
  if (fs::exists(fs::path(dir) / "shared"))
    fail("{}: holds a study several jobs drive; add --shared (every job of it needs it)", dir);
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
    if (previous.config_text != p.base.text) {
      std::vector<KeyDifference> d;
      try {
        d = differences(toml::parse(previous.config_text), toml::parse(p.base.text));
      } catch (const toml::parse_error&) {  // a damaged study's config: just "different"
      }
      fail(
          "{}: holds a sweep of a different config ({}); resume with the same config and --set, or choose another "
          "--out",
          study_path, d.empty() ? std::string("formatted differently") : d[0].text("the study", opt.config));
    }
  }
  read_warm_start(p, warm);
}

// Rank 0 after every group is done: the last lines, and the exit status.
int finish(Coordinator& c, std::thread& thread, const std::string& study_path) {
  thread.join();
  print_end(c, study_path);
  if (!c.incomplete()) return 0;
  fmt::print("sweep stopped early ({}); run the same command again (or requeue the job) to continue\n",
             c.stop_reason());
  return kExitRequeue;
}

}  // namespace

int sweep_command(const SweepOptions& opt, const Comm& world) {
  if (!opt.trace.empty()) start_trace(opt.trace, world);
  // Trial after trial allocates the same model, optimizer and batch buffers: keep freed memory in the
  // process for the next one instead of returning it and faulting it in again (a CNN trial touched
  // ~100 MB of fresh pages, 25k page faults, without this; 10k with it).
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const Plan p = plan_sweep(opt, world);
  std::string dir = opt.out;
  if (dir.empty() && world.leader()) dir = default_out_dir(opt.config);
  world.bcast_string(dir);
  std::string study_path = (fs::path(dir) / "study.h5").string();
  Study previous, warm;
  OutputLock lock;
  std::unique_ptr<SharedStudy> shared;  // rank 0's, with --shared
  world.root_only([&] {
    if (opt.shared)
      shared = open_shared(opt, p, dir, lock, warm), study_path = shared->study_dir() + "/study.h5";
    else
      open_study(opt, p, dir, lock, previous, warm);
  });
  const Deadline deadline = find_deadline(opt.deadline, opt.deadline_margin, world);
  std::string why;
  const int threads = choose_threads(world, &why);
  const Data data = load_and_bcast_data(world, p.base.data, uint64_t(p.base.train.seed));  // once for the sweep

  // rank groups, each with one device context for all its jobs
  MPI_Comm group_comm;
  Channels ch;
  MPI_Comm_split(world.raw(), world.rank() / p.G, world.rank(), &group_comm);
  MPI_Comm_dup(world.raw(), &ch.up);
  MPI_Comm_dup(world.raw(), &ch.down);
  const Comm gc(group_comm);
  Placement place;
  const std::unique_ptr<Backend> be = make_backend(p.base.train, world, &place);  // by place in the whole job
  print_launch("sweep", world, place, threads, why, deadline, opt.verbose);
  const std::unique_ptr<GradComm> grads = make_grad_comm(*be, gc);

  // the coordinator: rank 0, its own thread
  std::unique_ptr<Coordinator> coord;
  msg::MpiLink link(ch);
  std::thread coord_thread;
  if (world.leader()) {
    coord = std::make_unique<Coordinator>(p.sweep, std::move(previous), warm, dir, p.base.text, p.groups, world.size(),
                                          link, deadline, Coordinator::ReadCurves{}, shared.get());
    print_start(*coord, p.sweep, data, p.groups, p.G, threads, be->name(), study_path);
    coord_thread = std::thread([&coord] {
      try {
        coord->run();
      } catch (const std::exception& e) {  // the study cannot be written, ...: nobody can go on
        abort_job(std::string("sweep coordinator: ") + e.what());
      }
    });
  }
  const GroupSetup setup{.sweep = p.sweep,
                         .base_text = p.base.text,
                         .origin = opt.config,
                         .dir = dir,
                         .data = data,
                         .group = world.rank() / p.G,
                         .threads = threads,
                         .device_binding = place.bindings,
                         .local_stop = [&deadline] { return stop_requested(deadline); }};
  run_group(setup, gc, *be, *grads, ch);
  world.barrier_idle();  // every group is done, so the coordinator has finished
  int status = 0;
  if (coord) {
    const trace::Scope span("finish study");
    status = finish(*coord, coord_thread, study_path);
  }
  world.bcast(status);
  MPI_Comm_free(&group_comm);
  MPI_Comm_free(&ch.up);
  MPI_Comm_free(&ch.down);
  if (!opt.trace.empty()) write_trace(opt.trace, world);
  return status;
}

}  // namespace rs
