#include "sweep/coordinator.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <thread>

#include "error.h"
#include "io/progress.h"
#include "io/trace.h"
#include "sweep/engine.h"
#include "train/run_file.h"

namespace fs = std::filesystem;

namespace rs {
Coordinator::Coordinator(const SweepConfig& sweep, Study previous, const Study& warm, std::string dir,
                         std::string base_text, int groups, int world_size, msg::Link& link, const Deadline& deadline,
                         ReadCurves read_curves, SharedStudy* shared)
    : m_sweep(sweep),
      m_study(std::move(previous)),
      m_dir(std::move(dir)),
      m_study_path(((shared ? fs::path(shared->study_dir()) : fs::path(m_dir)) / "study.h5").string()),
      m_shared(shared),
      m_groups(groups),
      m_world(world_size),
      m_link(link),
      m_read_curves(std::move(read_curves)),
      m_policy(schedule_options(sweep, base_text)),
      m_search(sweep, base_text),
      m_deadline(deadline),
      m_offset(m_study.sweep_seconds),
      m_t0(Clock::now()) {
  m_study.config_text = std::move(base_text);
  m_study.keys.clear();
  for (const Dimension& d : sweep.space) m_study.keys.push_back(d.key);
  if (!sweep.warm_start.empty()) m_search.warm_start(warm, sweep.warm_start);
  replay_study(m_study, sweep, m_policy, m_search);  // a resumed sweep
  for (TrialRow& r : m_study.rows) {
    if (const std::string run = run_path(r.id); fs::exists(run)) r.run_path = run;
    note_epoch_seconds(r.id);
  }
  m_resumed = m_study.rows.size();
  for (size_t i = 0; i < m_study.rows.size(); ++i) m_row_of[m_study.rows[i].id] = i;
  m_best = best_row(m_study);
  restore_checkpointed();
  m_journal = Journal(journal_path(m_study_path), m_study);  // (a resumed study's own records now: compacted below)
  if (!m_study.rows.empty()) compact();
}

void Coordinator::compact() {
  const trace::Scope span("compact study");
  const auto t = Clock::now();
  m_study.sweep_seconds = elapsed();  // the sweep's time over all its runs
  m_study.journal_seq = m_journal.seq();
  write_study(m_study_path, m_study, m_world);
  m_journal.reset(m_study);
  m_compacted_at = since_start();
  m_compact_seconds = std::chrono::duration<double>(Clock::now() - t).count();
}

void Coordinator::note_best(size_t i) {
  const TrialRow& r = m_study.rows[i];
  const bool counts = r.status == TrialStatus::completed || r.status == TrialStatus::pruned;
  // best_row's choice: the highest accuracy, the earlier row on a tie
  const auto better = [&](int b) {
    const double x = m_study.rows[size_t(b)].best_val_accuracy;
    return r.best_val_accuracy > x || (r.best_val_accuracy == x && int(i) < b);
  };
  if (m_best == int(i))
    m_best = best_row(m_study);  // the best row itself changed (a promotion of the best: rare): look again
  else if (counts && (m_best < 0 || better(m_best)))
    m_best = int(i);
}

std::string Coordinator::run_path(int64_t trial) const {
  return (fs::path(m_dir) / "trials" / std::to_string(trial) / "run.h5").string();
}

void Coordinator::restore_values(int64_t trial) {
  const std::string run = run_path(trial);
  if (!fs::exists(run)) return;
  try {  // its proposal is in its checkpoint's config: it continues with the values it started with
    const std::string text = read_run_file(run).config_text;
    Overrides v;
    for (const Dimension& d : m_sweep.space)
      if (std::optional<TomlValue> x = toml_value_at(text, d.key)) v.emplace_back(d.key, *x);
    m_search.restore(trial, v);
  } catch (const UserError&) {  // unreadable: the trial starts afresh with a new proposal
  }
}

void Coordinator::restore_checkpointed() {
  // other trials' values are a function of their number; in a shared study a
  // trial's values are restored when this job takes it over
  if (m_sweep.method != "tpe" || m_shared) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(m_dir) / "trials", ec)) {
    int64_t id = -1;
    try {
      id = std::stoll(e.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    if (!row(id)) restore_values(id);
  }
}

void Coordinator::run() {
  trace::name_thread("coordinator");
  while (m_groups_done < m_groups || !m_unwritten.empty()) {
    if (!m_stopping && stop_signal()) begin_stop(fmt::format("signal {} on rank 0", stop_signal()));
    // results are written when no message waits, or when the oldest has waited 0.2 s (a busy coordinator)
    const bool due = !m_unwritten.empty() && Clock::now() - m_unwritten_since > std::chrono::milliseconds(200);
    msg::FromLeader m;
    if (!due && m_link.poll(&m)) {
      serve(m);
      m_heard_at = Clock::now();
    } else if (!m_unwritten.empty()) {
      write_finished();
    } else {
      // Idle: sleep a sixteenth of the time since the last message, 1 to 5 ms. Rank 0's group trains
      // on this core; a 1 ms poll preempted it ~1000 times a second (rank 0 trained ~10% slower than
      // rank 1), while a busy sweep of tiny trials keeps the sleeps at 1 ms.
      const auto quiet = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - m_heard_at) / 16;
      std::this_thread::sleep_for(std::clamp(quiet, std::chrono::microseconds(1000), std::chrono::microseconds(5000)));
    }
    if (m_shared) {
      m_shared->heartbeat();
      if (!m_waiting.empty() && Clock::now() - m_shared_at > std::chrono::milliseconds(500)) reply_waiting();
    }
  }
  if (m_journal.records()) compact();
  m_journal.remove();  // study.h5 holds everything
  if (m_shared) shared_end();
}

void Coordinator::sync_foreign() {
  if (!m_sweep.asha && m_sweep.method != "tpe") return;  // grid and random: the claims are all it needs
  if (Clock::now() - m_synced_at < std::chrono::milliseconds(250)) return;
  m_synced_at = Clock::now();
  // each job's study as cached (no merged copy): a trial promoted in several jobs is applied as far as it went
  for (const auto& [job, s] : m_shared->job_studies()) {
    if (job == m_shared->job()) continue;  // this job's results are in m_study already
    for (const TrialRow& r : s->rows) {
      if (m_leader_of.count(r.id)) continue;  // running here: its result comes here
      const int64_t reach = SharedStudy::reach(r);
      int64_t& known = m_foreign_reach.try_emplace(r.id, -1).first->second;
      const TrialRow* own = row(r.id);
      if (reach <= known || (own && reach <= SharedStudy::reach(*own))) continue;
      known = reach;
      m_search.restore(r.id, r.params);
      replay_rungs(*s, r, m_sweep, m_policy, m_search);
      m_search.end(r.id, r.status, r.best_val_accuracy);
      if (m_sweep.asha) m_policy.restore(r.id, r.status, r.epochs);
    }
  }
}

bool Coordinator::shared_next(SchedulePolicy::Decision* d) {
  m_shared_at = Clock::now();
  size_t pending = 0;
  const SharedStudy::Stage t = m_shared->take_over(m_shared->reached(m_study), &pending);
  if (t.trial >= 0) {
    if (m_sweep.method == "tpe") restore_values(t.trial);
    const Job j = t.epochs > 0                   ? Job{t.trial, t.epochs, false}
                  : m_sweep.asha && t.trial != 0 ? Job{t.trial, m_sweep.min_epochs, false}
                                                 : Job{t.trial, 0, true};
    if (m_sweep.asha) m_policy.take(t.trial);
    fmt::print("trial {:>4} taken over: the job that claimed it stopped (no heartbeat for {} s, or ended)\n", t.trial,
               m_shared->timeout());
    std::fflush(stdout);
    *d = {SchedulePolicy::Action::run, j};
    return true;
  }
  if (d->action == SchedulePolicy::Action::done && pending) d->action = SchedulePolicy::Action::wait;
  return d->action == SchedulePolicy::Action::wait;
}

void Coordinator::shared_end() {
  Study all = m_shared->gather(m_study);
  m_shared->done();
  const size_t want = size_t(total());
  const std::string path = (fs::path(m_dir) / "study.h5").string();
  // Every job writes what all jobs have at its end (a job array cut short by its time limit still leaves one
  // study to report on), unless the file already holds as many trials: another job, ending at the same
  // time, may have read more.
  size_t there = 0;
  try {
    if (study_exists(path)) there = read_study(path).rows.size();
  } catch (const UserError&) {  // damaged: written anew
  }
  if (!all.rows.empty() && all.rows.size() > there) {
    for (TrialRow& r : all.rows) r.run_path = fs::exists(run_path(r.id)) ? run_path(r.id) : "";
    std::sort(all.rows.begin(), all.rows.end(), [](const TrialRow& a, const TrialRow& b) { return a.id < b.id; });
    write_study(path, all, m_world);
  }
  if (all.rows.size() < want || m_incomplete)
    fmt::print(
        "shared study: {} of {} trials have results in all jobs' studies; {} holds them (the job that "
        "ends when every trial has one writes it again)\n",
        std::max(all.rows.size(), there), want, path);
  else
    fmt::print("shared study: every trial has a result; {} holds them\n", path);
  std::fflush(stdout);
}

void Coordinator::serve(const msg::FromLeader& m) {
  switch (m.tag) {
    case msg::kRequest:
      reply(m.leader);
      break;
    case msg::kRung:
      m_policy.rung(m.rung.trial, m.rung.epoch, m.rung.val_accuracy);
      m_search.rung(m.rung.trial, m.rung.epoch, m.rung.val_accuracy);
      break;
    case msg::kResult:
      result(m.result);
      break;
    case msg::kReply:
    case msg::kStop:
      throw std::logic_error(fmt::format("sweep coordinator: unexpected message tag {}", int(m.tag)));
  }
}

const std::vector<double>* Coordinator::curve(int64_t trial, const char* metric) const {
  const auto c = m_study.curves.find(trial);
  if (c == m_study.curves.end()) return nullptr;
  const auto m = c->second.find(metric);
  return m == c->second.end() ? nullptr : &m->second;
}

void Coordinator::note_epoch_seconds(int64_t trial) {
  const std::vector<double>* v = curve(trial, "seconds");
  if (!v || v->empty()) return;
  const double mean = std::accumulate(v->begin(), v->end(), 0.0) / double(v->size());
  m_epoch_seconds[trial] = mean;
  m_slowest_epoch = std::max(m_slowest_epoch, mean);
}

void Coordinator::reply_waiting() {
  std::vector<int> waiting;
  std::swap(waiting, m_waiting);
  for (size_t i = 0; i < waiting.size(); ++i) {
    reply(waiting[i]);
    // told to wait again: nothing changed for the policy, so every group after it would be too
    if (!m_waiting.empty() && m_waiting.back() == waiting[i]) {
      m_waiting.insert(m_waiting.end(), waiting.begin() + std::ptrdiff_t(i) + 1, waiting.end());
      return;
    }
  }
}

bool Coordinator::fits(const Job& j) const {
  double est = 0;  // its own epochs' pace, else the slowest trial's so far (nothing known: it may start)
  if (const auto it = m_epoch_seconds.find(j.trial); it != m_epoch_seconds.end())
    est = it->second;
  else
    est = m_slowest_epoch;
  return est <= m_deadline.left();
}

void Coordinator::begin_stop(const std::string& why) {
  m_stopping = m_incomplete = true;
  m_stop_reason = why;
  for (const auto& [trial, leader] : m_leader_of) {
    m_link.stop(leader);
    ++m_stops_sent[leader];
  }
  reply_waiting();
}

void Coordinator::reply(int leader) {
  SchedulePolicy::Decision d;  // done, when stopping
  if (!m_stopping) {
    auto next = [&] {
      return m_deadline.at > 0 ? m_policy.next(elapsed(), [this](const Job& j) { return fits(j); })
                               : m_policy.next(elapsed());
    };
    if (m_shared) sync_foreign();
    d = next();
    // a shared study: a trial (or promotion) another job claimed is passed over: its result is that job's
    // (with ASHA the trial stays running here until sync_foreign() reads where that job left it)
    while (m_shared && d.action == SchedulePolicy::Action::run && !m_shared->claim(d.job.trial, stage(d.job))) {
      if (!m_sweep.asha) m_policy.finished(d.job.trial, TrialStatus::completed, 0);
      d = next();
    }
    if (m_shared &&
        ((d.action == SchedulePolicy::Action::done && !d.out_of_time) || d.action == SchedulePolicy::Action::wait))
      shared_next(&d);
    if (d.out_of_time && !m_incomplete) {
      m_incomplete = true;
      m_stop_reason = "the deadline";
      fmt::print("sweep: the next job cannot reach a checkpoint before the deadline ({}); no new work starts\n",
                 m_deadline.describe());
      std::fflush(stdout);
    }
  }
  if (d.action == SchedulePolicy::Action::wait) {
    m_waiting.push_back(leader);
    return;
  }
  msg::Reply r;
  r.done = d.action == SchedulePolicy::Action::done;
  r.job = d.job;
  r.stops_sent = m_stops_sent[leader];
  if (r.done) {
    ++m_groups_done;
  } else {
    r.params = msg::params_text(m_search.start(d.job.trial));
    m_started_at[d.job.trial] = elapsed();
    m_leader_of[d.job.trial] = leader;
  }
  m_link.reply(leader, r);
}

TrialRow* Coordinator::row(int64_t trial) {
  const auto it = m_row_of.find(trial);
  return it == m_row_of.end() ? nullptr : &m_study.rows[it->second];
}

void Coordinator::record_rungs(int64_t trial, int64_t epochs) {
  const std::vector<double>* val = curve(trial, "val_accuracy");
  if (!val) return;
  for (const auto& [e, v] : rung_results(m_sweep, *val, epochs)) {
    m_policy.rung(trial, e, v);
    m_search.rung(trial, e, v);
  }
}

void Coordinator::result(const msg::Result& m) {
  m_leader_of.erase(m.trial);
  m_search.end(m.trial, m.interrupted ? std::nullopt : std::optional(m.status), m.best_val_accuracy);
  if (m.interrupted) {  // checkpointed inside the job: the trial is not finished, a later run continues it
    m_started_at.erase(m.trial);
    fmt::print("trial {:>4} interrupted (group {}, epoch {}); its checkpoint is kept for the next run\n", m.trial,
               m.group, m.epochs + 1);
    std::fflush(stdout);
    if (!m_stopping) begin_stop(fmt::format("group {} stopped: a signal or the deadline", m.group));
    return;
  }
  TrialRow r;
  r.id = m.trial, r.epochs = m.epochs, r.group = m.group, r.status = m.status, r.message = m.message;
  r.best_val_accuracy = m.best_val_accuracy, r.test_accuracy = m.test_accuracy, r.wall_seconds = m.wall_seconds;
  r.start_seconds = m_started_at[m.trial];
  r.end_seconds = elapsed();
  m_started_at.erase(m.trial);
  r.params = m_search.params(m.trial);
  if (TrialRow* old = row(m.trial)) {  // a promoted trial: its row now holds its latest job (wall: all its jobs)
    r.wall_seconds += old->wall_seconds;
    *old = std::move(r);
  } else {
    m_row_of[m.trial] = m_study.rows.size();
    m_study.rows.push_back(std::move(r));
  }
  note_best(m_row_of[m.trial]);
  m_policy.finished(m.trial, m.status, m.epochs);  // its rungs came as Rung messages
  if (m_unwritten.empty()) m_unwritten_since = Clock::now();
  m_unwritten.emplace_back(m.trial, m.wall_seconds);
  reply_waiting();  // groups told to wait may have work now (or be done)
}

void Coordinator::write_finished() {
  const trace::Scope span("write results", "\"results\": {}", m_unwritten.size());
  for (const auto& [trial, wall] : m_unwritten) {
    TrialRow& r = *row(trial);
    r.run_path = run_path(trial);
    if (m_read_curves) {
      m_study.curves[trial] = m_read_curves(trial, r.run_path);
    } else if (fs::exists(r.run_path)) {
      try {
        m_study.curves[trial] = read_run_file(r.run_path).history.cols;
      } catch (const UserError&) {
      }
    } else {
      r.run_path.clear();
    }
    record_rungs(trial, r.epochs);  // a job that had nothing to train (its checkpoint was past its stop)
    note_epoch_seconds(trial);
  }
  m_study.sweep_seconds = elapsed();  // the sweep's time over all its runs
  std::vector<const TrialRow*> rows;
  for (const auto& [trial, wall] : m_unwritten) rows.push_back(row(trial));
  m_journal.append(m_study, rows);
  if (since_start() - m_compacted_at >= std::max(1.0, 20 * m_compact_seconds)) compact();
  for (const auto& [trial, wall] : m_unwritten) print_progress(*row(trial), wall);
  m_unwritten.clear();
}

void Coordinator::print_progress(const TrialRow& r, double wall_seconds) const {
  const int b = m_best;
  const std::string best = b < 0 ? std::string("none yet")
                                 : fmt::format("#{} {}", m_study.rows[size_t(b)].id,
                                               format_percent(m_study.rows[size_t(b)].best_val_accuracy));
  // Time left: the pace so far over the trials still without a result (ASHA's
  // promotions make this a rough guide).
  const size_t have = m_study.rows.size(), fresh = have - m_resumed;
  const double left = fresh ? since_start() / double(fresh) * double(size_t(total()) - have) : 0;
  const bool bad = r.status == TrialStatus::failed || r.status == TrialStatus::diverged;
  const std::string what =
      bad ? fmt::format("group {} after {}: {}", r.group, format_seconds(wall_seconds), one_line(r.message, 160))
          : fmt::format("group {} epochs {:>3} val {} test {} {:>6}", r.group, r.epochs,
                        format_percent(r.best_val_accuracy), format_percent(r.test_accuracy),
                        format_seconds(wall_seconds));
  // a shared study: this job's results (the others' are in their studies)
  const std::string count = m_shared ? fmt::format("{} of {} trials done by this job", have, total())
                                     : fmt::format("{}/{} trials have results", have, total());
  fmt::print("trial {:>4} {:<9} {}  | {} ({} running), best {}, elapsed {}, left ~{}\n", r.id, to_string(r.status),
             what, count, m_policy.running(), best, format_seconds(elapsed()), format_seconds(left));
  std::fflush(stdout);
}

}  // namespace rs
