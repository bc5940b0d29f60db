// ranksweep sweep: the world is split into rank groups of G ranks; each group
// trains one job (a trial, or a promoted trial's next rung) at a time,
// data-parallel over its own communicator, and asks for the next job when
// done (dynamic scheduling). Rank 0 trains in group 0 and is also the
// coordinator: between its own training steps it answers the other group
// leaders (jobs, rung results, results) and rewrites study.h5 after every
// finished job. The data is read once and shared per node for the whole sweep.
#include <omp.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "backend/backend.h"
#include "dist/bcast_data.h"
#include "error.h"
#include "io/run_file.h"
#include "sweep/space.h"
#include "sweep/study.h"
#include "train/commands.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

using Clock = std::chrono::steady_clock;

enum Tag : int { kRequest = 11, kJob, kRung, kResult };

constexpr int64_t kFull = int64_t(1) << 40;  // a job's target: train to the trial's own epochs

// A unit of work: train trial `id` until `target` epochs (capped by its
// train.epochs). id -1: no more work for this group.
struct Job {
  int64_t id, target;
};

struct RungMsg {
  int64_t id, epoch;
  double val;
};

struct ResultMsg {
  int64_t id, epochs, group;
  double best_val, test, wall, start, end;
  char status[16];
  char message[240];
};

// The coordinator's state; lives on rank 0 only.
//
// ASHA (asynchronous successive halving, Li et al. 2020): every trial stops
// at the first rung (min_epochs) and is recorded as `pruned`. Whenever a group
// asks for work, the coordinator first looks for a promotion: from the
// highest rung down, a trial among the top floor(n/reduction) of the n
// results at that rung that has not gone on yet resumes from its checkpoint
// and trains to the next rung (min_epochs * reduction^k; the last promotion
// runs to the trial's full epochs and ends `completed`). Only then does it
// start a new trial. A group with nothing to do waits while other trials
// can still produce promotions. The default trial is the baseline: it runs
// its full budget in one job, and its results at each rung count.
class Coordinator {
 public:
  Coordinator(const SweepConfig& sweep, Study study, std::string dir, std::string base_text, int groups,
              int world_size, MPI_Comm ctl)
      : m_sweep(sweep), m_study(std::move(study)), m_dir(std::move(dir)), m_groups(groups), m_world(world_size),
        m_ctl(ctl), m_total(trial_count(sweep)), m_t0(Clock::now()) {
    m_study.config_text = std::move(base_text);
    m_study.keys.clear();
    for (const Dimension& d : sweep.space) m_study.keys.push_back(d.key);
    for (TrialRow& r : m_study.rows) {  // a resumed sweep: rebuild the rungs from the finished jobs' curves
      m_started.insert(r.id);
      const fs::path run = fs::path(m_dir) / "trials" / std::to_string(r.id) / "run.h5";
      if (fs::exists(run)) r.run_path = run.string();
      record_rungs(r.id, r.epochs);
    }
    m_resumed = m_study.rows.size();
    if (sweep.method == "grid")  // the default's own grid point would re-run trial 0
      for (int64_t id = 1; id < m_total; ++id)
        if (same_as_default(make_trial(sweep, id), m_study.config_text)) m_skipped.push_back(id);
    m_started.insert(m_skipped.begin(), m_skipped.end());
  }

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - m_t0).count(); }
  size_t resumed() const { return m_resumed; }

  // The next job, or {-2, 0} when the caller should wait (running trials may
  // still earn promotions), or {-1, 0} when the sweep has nothing left.
  Job next_job() {
    if (m_sweep.time_budget > 0 && elapsed() > m_sweep.time_budget) return finish();
    if (m_sweep.asha)
      for (auto it = m_rungs.rbegin(); it != m_rungs.rend(); ++it) {
        std::vector<std::pair<int64_t, double>> v = it->second;  // arrival order: ties go to the earlier
        std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
        for (size_t i = 0; i < v.size() / size_t(m_sweep.reduction); ++i) {
          const TrialRow* r = row(v[i].first);
          // paused at this rung (a checkpoint from an older sweep may be a little past it)
          if (r && r->status == "pruned" && r->epochs >= it->first && r->epochs < it->first * m_sweep.reduction &&
              !m_running.count(r->id))
            return start({r->id, it->first * m_sweep.reduction});
        }
      }
    while (m_next < m_total && m_started.count(m_next)) ++m_next;
    if (m_next < m_total) {
      const int64_t id = m_next++;
      m_started.insert(id);
      return start({id, m_sweep.asha && id != 0 ? m_sweep.min_epochs : kFull});
    }
    if (!m_running.empty()) return {-2, 0};
    return finish();
  }

  // Rank 0's own group: serve others until there is a job or the end.
  Job next_job_waiting() {
    for (;;) {
      const Job j = next_job();
      if (j.id != -2) return j;
      MPI_Status st;
      MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, m_ctl, &st);
      serve(st);
    }
  }

  void rung(const RungMsg& m) { record_rung(m.id, m.epoch, m.val); }

  void result(const ResultMsg& m) {
    TrialRow r;
    r.id = m.id, r.epochs = m.epochs, r.group = m.group, r.best_val_accuracy = m.best_val, r.test_accuracy = m.test;
    r.wall_seconds = m.wall, r.start_seconds = m.start, r.end_seconds = m.end, r.status = m.status;
    r.message = m.message;
    r.params = make_trial(m_sweep, m.id).params;
    r.run_path = (fs::path(m_dir) / "trials" / std::to_string(m.id) / "run.h5").string();
    if (fs::exists(r.run_path)) {
      try {
        const RunFile rf = read_run_file(r.run_path);
        m_study.curves[m.id] = rf.history.cols;
      } catch (const UserError&) {
      }
    } else {
      r.run_path.clear();
    }
    if (TrialRow* old = row(m.id)) {  // a promoted trial: its row now holds its latest job (wall: all its jobs)
      r.wall_seconds += old->wall_seconds;
      *old = std::move(r);
    } else {
      m_study.rows.push_back(std::move(r));
    }
    m_running.erase(m.id);
    record_rungs(m.id, m.epochs);
    write_study((fs::path(m_dir) / "study.h5").string(), m_study, m_world, elapsed());
    const TrialRow& b = m_study.rows[size_t(best_row(m_study) < 0 ? 0 : best_row(m_study))];
    // Time left: the pace so far over the trials still without a result (ASHA's
    // promotions make this a rough guide).
    const size_t have = m_study.rows.size(), fresh = have - m_resumed;
    const double left = fresh ? elapsed() / double(fresh) * double(size_t(total()) - have) : 0;
    fmt::print("trial {:>4} {:<9} group {} epochs {:>3} val {:.2f}% test {:.2f}% {:>6}  | {}/{} trials have results "
               "({} running), best #{} {:.2f}%, elapsed {}, left ~{}\n",
               m.id, m.status, m.group, m.epochs, 100 * m.best_val, 100 * m.test, format_seconds(m.wall), have,
               total(), m_running.size(), b.id, 100 * b.best_val_accuracy, format_seconds(elapsed()),
               format_seconds(left));
    std::fflush(stdout);
    // Groups that were told to wait may have work now.
    while (!m_waiting.empty()) {
      const Job j = next_job();
      if (j.id == -2) break;
      MPI_Send(&j, sizeof j, MPI_BYTE, m_waiting.back(), kJob, m_ctl);
      m_waiting.pop_back();
    }
  }

  // Answers every pending message from other group leaders.
  void poll() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, m_ctl, &flag, &st);
      if (!flag) return;
      serve(st);
    }
  }

  // After rank 0's own group is done: serve until every group is done.
  void serve_until_done() {
    while (m_finished_groups < m_groups) {
      MPI_Status st;
      MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, m_ctl, &st);
      serve(st);
    }
  }

  const Study& study() const { return m_study; }
  // Trials this sweep runs (grid points equal to the default are not run).
  int64_t total() const { return m_total - int64_t(m_skipped.size()); }
  const std::vector<int64_t>& skipped() const { return m_skipped; }

 private:
  Job start(Job j) {
    m_running.insert(j.id);
    return j;
  }
  Job finish() {
    ++m_finished_groups;
    return {-1, 0};
  }
  TrialRow* row(int64_t id) {
    for (TrialRow& r : m_study.rows)
      if (r.id == id) return &r;
    return nullptr;
  }
  // A trial's results at every rung up to `epochs`, from its curves.
  void record_rungs(int64_t id, int64_t epochs) {
    const auto c = m_study.curves.find(id);
    if (c == m_study.curves.end() || !c->second.count("val_accuracy")) return;
    const std::vector<double>& val = c->second.at("val_accuracy");
    for (int64_t e : asha_rungs(m_sweep, epochs + 1))
      if (e <= int64_t(val.size())) record_rung(id, e, val[size_t(e - 1)]);
  }
  void record_rung(int64_t id, int64_t epoch, double val) {
    auto& v = m_rungs[epoch];
    for (const auto& [i, x] : v)
      if (i == id) return;  // a restarted job passing the rung again
    v.emplace_back(id, val);
  }

  void serve(const MPI_Status& st) {
    if (st.MPI_TAG == kRequest) {
      int64_t group = 0;
      MPI_Recv(&group, 1, MPI_INT64_T, st.MPI_SOURCE, kRequest, m_ctl, MPI_STATUS_IGNORE);
      const Job j = next_job();
      if (j.id == -2)
        m_waiting.push_back(st.MPI_SOURCE);
      else
        MPI_Send(&j, sizeof j, MPI_BYTE, st.MPI_SOURCE, kJob, m_ctl);
    } else if (st.MPI_TAG == kRung) {
      RungMsg m;
      MPI_Recv(&m, sizeof m, MPI_BYTE, st.MPI_SOURCE, kRung, m_ctl, MPI_STATUS_IGNORE);
      rung(m);
    } else {
      ResultMsg m;
      MPI_Recv(&m, sizeof m, MPI_BYTE, st.MPI_SOURCE, kResult, m_ctl, MPI_STATUS_IGNORE);
      result(m);
    }
  }

  SweepConfig m_sweep;
  Study m_study;
  std::string m_dir;
  int m_groups, m_world;
  MPI_Comm m_ctl;
  int64_t m_total, m_next = 0;
  int m_finished_groups = 0;
  size_t m_resumed = 0;
  std::set<int64_t> m_started, m_running;  // started: trials handed out at least once (or skipped)
  std::vector<int64_t> m_skipped;
  std::vector<int> m_waiting;  // ranks of group leaders told nothing yet
  std::map<int64_t, std::vector<std::pair<int64_t, double>>> m_rungs;  // epoch -> (trial, val) in arrival order
  Clock::time_point m_t0;
};

// What a group leader calls: local on rank 0, messages elsewhere.
struct Scheduler {
  Coordinator* local;  // rank 0
  MPI_Comm ctl;
  Job next(int64_t group) {
    if (local) return local->next_job_waiting();
    Job j{-1, 0};
    MPI_Send(&group, 1, MPI_INT64_T, 0, kRequest, ctl);
    MPI_Recv(&j, sizeof j, MPI_BYTE, 0, kJob, ctl, MPI_STATUS_IGNORE);
    return j;
  }
  void rung(const RungMsg& m) {
    if (local)
      local->rung(m);
    else
      MPI_Send(&m, sizeof m, MPI_BYTE, 0, kRung, ctl);
  }
  void result(const ResultMsg& m) {
    if (local)
      local->result(m);
    else
      MPI_Send(&m, sizeof m, MPI_BYTE, 0, kResult, ctl);
  }
};

// Runs one job in this group: trial job.id from its checkpoint (if any) to
// job.target epochs; returns its result (on the leader).
ResultMsg run_job(const Job& job, int64_t group, const SweepConfig& sweep, const std::string& base_text,
                  const std::string& origin, const Data& data, const Comm& gc, Scheduler& sched,
                  Coordinator* coord, const std::string& dir, double t_start) {
  const int64_t id = job.id;
  ResultMsg res{};
  res.id = id, res.group = group, res.start = t_start;
  std::snprintf(res.status, sizeof res.status, "completed");
  const auto t0 = Clock::now();
  const std::string tdir = (fs::path(dir) / "trials" / std::to_string(id)).string();
  const std::string run = (fs::path(tdir) / "run.h5").string();
  try {
    const Config cfg = parse_config_text(base_text, origin, make_trial(sweep, id).sets());
    std::string why;
    auto be = make_backend(cfg.train, gc, &why);
    Trainer tr(cfg, data, *be, gc);
    int have = 0;
    if (gc.leader()) {
      std::error_code ec;
      fs::create_directories(tdir, ec);
      have = fs::exists(run);
    }
    gc.bcast(have);
    RunFile rf;
    if (have) {
      gc.root_only([&] { rf = read_run_file(run); });
      tr.resume(rf);
    } else {
      tr.init();
    }
    if (coord) tr.set_step_hook([coord] { coord->poll(); });
    const std::vector<int64_t> rungs = asha_rungs(sweep, cfg.train.epochs);
    const int64_t stop = std::min(job.target, cfg.train.epochs);
    Provenance prov{gc.size(), omp_get_max_threads(), "sweep trial " + std::to_string(id)};
    while (tr.epochs_done() < stop) {
      tr.run_epoch();
      if (gc.leader()) {
        write_run_file(run, cfg.text, tr.model(), tr.optimizer(), data.mean, data.inv_std, tr.history(), prov);
        if (tr.epochs_done() < stop && std::find(rungs.begin(), rungs.end(), tr.epochs_done()) != rungs.end())
          sched.rung(RungMsg{id, tr.epochs_done(), tr.history().cols.at("val_accuracy").back()});
      }
    }
    if (tr.epochs_done() < cfg.train.epochs) std::snprintf(res.status, sizeof res.status, "pruned");
    const auto& h = tr.history().cols;
    res.epochs = tr.epochs_done();
    if (res.epochs > 0) {  // test accuracy at the epoch with the best validation accuracy
      const auto& val = h.at("val_accuracy");
      const size_t b = size_t(std::max_element(val.begin(), val.end()) - val.begin());
      res.best_val = val[b];
      res.test = h.at("test_accuracy")[b];
    }
  } catch (const Diverged& e) {
    std::snprintf(res.status, sizeof res.status, "diverged");
    std::snprintf(res.message, sizeof res.message, "%s", e.what());
  } catch (const std::exception& e) {  // bad trial config, out of memory, ...: this trial fails, the sweep goes on
    std::snprintf(res.status, sizeof res.status, "failed");
    std::snprintf(res.message, sizeof res.message, "%s", e.what());
  }
  res.wall = std::chrono::duration<double>(Clock::now() - t0).count();
  res.end = res.start + res.wall;
  return res;
}

}  // namespace

int sweep_command(const SweepOptions& opt, const Comm& world) {
  // ---- config, space, output directory: checked before anything is read
  Config base = load_config(opt.config, opt.sets);
  SweepConfig sweep = parse_sweep(base.text, opt.config);
  if (opt.group_size > 0) sweep.group_size = opt.group_size;
  const int G = int(sweep.group_size);
  if (world.size() % G)
    fail("--group-size {}: does not divide the {} ranks (every group must have the same size)", G, world.size());
  const int groups = world.size() / G;
  std::string dir = opt.out;
  if (dir.empty()) {
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    dir = "runs/" + fs::path(opt.config).stem().string() + "-" + stamp;
  }
  world.bcast_string(dir);
  const std::string study_path = (fs::path(dir) / "study.h5").string();
  Study previous;
  world.root_only([&] {
    std::error_code ec;
    fs::create_directories(fs::path(dir) / "trials", ec);
    if (ec) fail("{}: cannot create output directory: {}", dir, ec.message());
    if (fs::exists(study_path)) {
      previous = read_study(study_path);
      if (previous.config_text != base.text)
        fail("{}: holds a sweep of a different config; resume with the same config and --set, or choose another --out",
             study_path);
    }
  });
  std::string why;
  const int threads = choose_threads(world, &why);

  // ---- the data, once for the whole sweep
  const Data data = load_and_bcast_data(world, base.data, uint64_t(base.train.seed));

  MPI_Comm group_comm, ctl;
  MPI_Comm_split(world.raw(), world.rank() / G, world.rank(), &group_comm);
  MPI_Comm_dup(world.raw(), &ctl);
  const Comm gc(group_comm);
  const int64_t group = world.rank() / G;

  std::unique_ptr<Coordinator> coord;
  if (world.leader()) {
    coord = std::make_unique<Coordinator>(sweep, std::move(previous), dir, base.text, groups, world.size(), ctl);
    fmt::print("sweep: {} trials ({} {} search{}), {} group(s) of {} rank(s) x {} thread(s); data {} train / {} "
               "validation / {} test; out {}\n",
               coord->total(), sweep.method, sweep.space.size() == 1 ? "1-D" : fmt::format("{}-D", sweep.space.size()),
               sweep.asha ? fmt::format(", ASHA min {} epoch(s), reduction {}", sweep.min_epochs, sweep.reduction)
                          : "",
               groups, G, threads, data.train_idx.size(), data.val_idx.size(), data.test.n, study_path);
    for (int64_t id : coord->skipped())
      fmt::print("grid point {} ({}) is the default trial 0: not run twice\n", id,
                 fmt::join(make_trial(sweep, id).sets(), ", "));
    if (coord->resumed()) fmt::print("resuming: {} trial(s) already in {}\n", coord->resumed(), study_path);
    std::fflush(stdout);
  }
  Scheduler sched{coord.get(), ctl};
  for (;;) {
    Job job{-1, 0};
    if (gc.leader()) job = sched.next(group);
    gc.bcast(job);
    if (job.id < 0) break;
    const double start = coord ? coord->elapsed() : 0;
    ResultMsg r = run_job(job, group, sweep, base.text, opt.config, data, gc, sched, coord.get(), dir, start);
    if (gc.leader()) sched.result(r);
  }
  if (coord) coord->serve_until_done();
  MPI_Barrier(world.raw());
  if (coord) {
    const Study& s = coord->study();
    const int b = best_row(s);
    int d = -1;
    for (size_t i = 0; i < s.rows.size(); ++i)
      if (s.rows[i].id == 0) d = int(i);
    fmt::print("sweep done in {}: {} trials in {}\n", format_seconds(coord->elapsed()), s.rows.size(), study_path);
    if (b >= 0)
      fmt::print("best: trial {} val {:.2f}% test {:.2f}%", s.rows[b].id, 100 * s.rows[b].best_val_accuracy,
                 100 * s.rows[b].test_accuracy);
    if (b >= 0 && d >= 0)
      fmt::print("; default (trial 0): val {:.2f}% test {:.2f}%", 100 * s.rows[d].best_val_accuracy,
                 100 * s.rows[d].test_accuracy);
    fmt::print("\n");
  }
  MPI_Comm_free(&group_comm);
  MPI_Comm_free(&ctl);
  return 0;
}

}  // namespace rs
