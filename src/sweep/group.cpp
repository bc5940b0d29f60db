#include "sweep/group.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "error.h"
#include "io/trace.h"
#include "sweep/protocol.h"
#include "sweep/study.h"
#include "train/run_file.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

using Clock = std::chrono::steady_clock;

// The leader's side of Stop messages: received ones are counted, so every one
// the coordinator sent is received before the group finishes.
struct StopBox {
  MPI_Comm down;
  int64_t seen = 0;
  bool stopped = false;  // a Stop arrived during this job
  bool poll() {
    int flag = 0;
    MPI_Iprobe(0, msg::kStop, down, &flag, MPI_STATUS_IGNORE);
    if (flag) {
      msg::recv<msg::Stop>(0, msg::kStop, down);
      ++seen;
      stopped = true;
    }
    return stopped;
  }
  void drain(int64_t sent) {
    for (; seen < sent; ++seen) msg::recv<msg::Stop>(0, msg::kStop, down);
  }
};

// Trains job.trial from its checkpoint (if any) to the job's stop; the result on the leader.
msg::Result run_job(const GroupSetup& s, const Job& job, const Overrides& params, const Comm& gc, Backend& be,
                    GradComm& grads, MPI_Comm up, StopBox& box) {
  const int64_t id = job.trial;
  msg::Result res;
  res.trial = id, res.group = s.group;
  const auto t0 = Clock::now();
  const std::string tdir = (fs::path(s.dir) / "trials" / std::to_string(id)).string();
  const std::string run = (fs::path(tdir) / "run.h5").string();
  // Every failure is agreed by the whole group before anyone moves on: what a
  // single rank does alone (the leader's file I/O, each rank's allocations)
  // runs under root_only / agree; the training steps themselves fail on all
  // ranks together (a diverged loss is allreduced) or end the job (below).
  try {
    std::optional<Config> cfgp;
    std::optional<Trainer> trp;
    gc.agree([&] {
      cfgp.emplace(parse_config_text(s.base_text, s.origin, {}, params));
      trp.emplace(*cfgp, s.data, be, grads, gc);
    });
    const Config& cfg = *cfgp;
    Trainer& tr = *trp;
    int have = 0;
    gc.root_only([&] {
      fs::create_directories(tdir);
      have = fs::exists(run);
    });
    gc.bcast(have);
    RunFile rf;
    if (have) {
      gc.root_only([&] { rf = read_run_file(run); });
      tr.resume(rf);
    } else {
      tr.init();
    }
    const std::vector<int64_t> rungs = asha_rungs(s.sweep, cfg.train.epochs);
    const int64_t stop = job.full_budget ? cfg.train.epochs : std::min(job.stop_epoch, cfg.train.epochs);
    const Provenance prov{gc.size(), s.threads, "sweep trial " + std::to_string(id), s.device_binding};
    tr.set_stop_check([&] { return (s.local_stop && s.local_stop()) || (gc.leader() && box.poll()); });
    const Trainer::Ended end = tr.run_epochs(
        stop,
        [&] {
          gc.root_only([&] {
            write_run_file(run, cfg.text, tr.model(), tr.optimizer(), s.data.mean, s.data.inv_std, s.data.class_names,
                           tr.history(), prov, tr.position());
          });
        },
        [&] {
          if (gc.leader() && std::find(rungs.begin(), rungs.end(), tr.epochs_done()) != rungs.end())
            msg::send(msg::Rung{id, tr.epochs_done(), tr.history().cols.at("val_accuracy").back()}, 0, msg::kRung, up);
        });
    res.interrupted = end != Trainer::Ended::done;  // the checkpoint is written: the trial goes on in a later run
    res.status = tr.epochs_done() < cfg.train.epochs ? TrialStatus::pruned : TrialStatus::completed;
    const auto& h = tr.history().cols;
    res.epochs = tr.epochs_done();
    if (res.epochs > 0) {  // test accuracy at the epoch with the best validation accuracy
      const auto& val = h.at("val_accuracy");
      const size_t b = size_t(std::max_element(val.begin(), val.end()) - val.begin());
      res.best_val_accuracy = val[b];
      res.test_accuracy = h.at("test_accuracy")[b];
    }
  } catch (const Diverged& e) {
    res.status = TrialStatus::diverged;
    res.message = e.what();
  } catch (const WriteError& e) {  // a full disk, ...: failed now, run again when the sweep is resumed
    res.status = TrialStatus::failed;
    res.message = std::string(kWriteFailed) + e.what();
  } catch (const UserError& e) {  // bad trial config, ...: this trial fails, the sweep goes on
    res.status = TrialStatus::failed;
    res.message = e.what();
  } catch (const AgreedError& e) {  // a checkpoint write, an allocation, ...: likewise
    res.status = TrialStatus::failed;
    res.message = e.what();
  } catch (const std::exception& e) {
    // Thrown on this rank alone inside the training steps: its partners are
    // in a collective it will never join. Alone in its group, the rank fails
    // the trial; otherwise the job cannot go on in step.
    if (gc.size() > 1)
      abort_job(fmt::format("trial {} failed on this rank alone, its group cannot go on: {}", id, e.what()));
    res.status = TrialStatus::failed;
    res.message = e.what();
  }
  res.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return res;
}

}  // namespace

void run_group(const GroupSetup& s, const Comm& group, Backend& be, GradComm& grads, Channels ch) {
  StopBox box{ch.down};
  for (;;) {
    struct {
      bool done = false;
      Job job;
    } work;
    std::string params;
    const auto asked = trace::Clock::now();
    if (group.leader()) {  // sleeps while the coordinator makes the group wait
      msg::send(msg::Request{s.group}, 0, msg::kRequest, ch.up);
      const msg::Reply r = msg::recv_reply(0, ch.down);
      box.drain(r.stops_sent);  // a Stop meant for the job that just ended
      box.stopped = false;
      work = {r.done, r.job};
      params = r.params;
    }
    group.bcast_idle(work);
    trace::span("wait for a trial", asked, trace::Clock::now());
    if (work.done) return;
    group.bcast_string(params);
    const trace::Scope span("trial", "\"trial\": {}, \"group\": {}", work.job.trial, s.group);
    const msg::Result res = run_job(s, work.job, msg::parse_params_text(params), group, be, grads, ch.up, box);
    if (group.leader()) msg::send_result(res, 0, ch.up);
  }
}

}  // namespace rs
