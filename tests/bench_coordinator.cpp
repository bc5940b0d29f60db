// The sweep's coordinator without training or MPI (not a test: run by
// jobs/bench-coordinator.sh). Simulated groups answer every job at once
// through an in-process link: each job's result (one epoch per rung, a
// made-up validation accuracy) and the group's next request. The link
// delivers a round of messages, then nothing (as if every group were
// training), so the coordinator writes the round's results like a real
// one. Each trial gets the curves of a real one-epoch-per-rung run (19
// metrics, one value per epoch). For each trial count and group count it
// prints results per second over the whole sweep, the last 10% of the
// trials' cost per result against the first 10% (at least 4 rounds each), the resume (read_study +
// replay) time, and `report`/`export`'s read time.
//
// The table goes to standard error, the coordinator's progress lines to standard output.
// usage: bench_coordinator [--trials N,N,..] [--groups G,G,..] [--asha] [--dir DIR] >/dev/null
#include <fmt/format.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include "sweep/coordinator.h"
#include "sweep/engine.h"

using namespace rs;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Groups that finish their job the moment they get it.
class InstantGroups : public msg::Link {
 public:
  InstantGroups(int groups, int64_t epochs, const SweepConfig& sweep) : m_epochs(epochs), m_sweep(sweep) {
    for (int g = 0; g < groups; ++g) m_queue.push_back(request(g));
    m_round = groups;
  }
  bool poll(msg::FromLeader* m) override {
    if (m_queue.empty() || m_round == 0) {
      m_round = int(m_queue.size());  // the next round: what is queued now
      return false;
    }
    *m = m_queue.front();
    m_queue.pop_front();
    --m_round;
    if (m->tag == msg::kResult) m_times.push_back(Clock::now());
    return true;
  }
  void reply(int leader, const msg::Reply& r) override {
    if (r.done) return;
    const int64_t to = r.job.full_budget ? m_epochs : std::min(r.job.stop_epoch, m_epochs);
    const double val = accuracy(r.job.trial);
    for (int64_t e : asha_rungs(m_sweep, m_epochs))
      if (e <= to) {
        msg::FromLeader m;
        m.tag = msg::kRung, m.leader = leader, m.rung = {r.job.trial, e, val * (1 - 0.5 / double(e))};
        m_queue.push_back(m);
      }
    msg::FromLeader m;
    m.tag = msg::kResult, m.leader = leader;
    m.result.trial = r.job.trial, m.result.epochs = to, m.result.group = leader;
    m.result.status = to < m_epochs ? TrialStatus::pruned : TrialStatus::completed;
    m.result.best_val_accuracy = val * (1 - 0.5 / double(to)), m.result.test_accuracy = val / 2;
    m_queue.push_back(m);
    m_queue.push_back(request(leader));
  }
  void stop(int) override {}
  const std::vector<Clock::time_point>& result_times() const { return m_times; }

 private:
  static msg::FromLeader request(int g) {
    msg::FromLeader m;
    m.tag = msg::kRequest, m.leader = g;
    return m;
  }
  static double accuracy(int64_t trial) { return 0.5 + 0.4 * double((trial * 2654435761u) % 1000) / 1000; }
  int64_t m_epochs;
  SweepConfig m_sweep;
  std::deque<msg::FromLeader> m_queue;
  int m_round = 0;
  std::vector<Clock::time_point> m_times;
};

std::vector<int64_t> list(const std::string& s) {
  std::vector<int64_t> v;
  for (size_t a = 0; a < s.size();) {
    const size_t b = std::min(s.find(',', a), s.size());
    v.push_back(std::stoll(s.substr(a, b - a)));
    a = b + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> trials{1000, 10000, 100000}, groups{16, 256, 1024};
  bool asha = false;
  std::string dir = (fs::temp_directory_path() / "bench_coordinator").string();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) trials = list(argv[++i]);
    if (a == "--groups" && i + 1 < argc) groups = list(argv[++i]);
    if (a == "--asha") asha = true;
    if (a == "--dir" && i + 1 < argc) dir = argv[++i];
  }
  const int64_t epochs = asha ? 9 : 3;
  fmt::print(stderr, "random search{}, {} epochs a trial (19 curves of that length); results/s over the whole sweep\n",
             asha ? ", ASHA (min 1 epoch, reduction 3)" : "", epochs);
  fmt::print(stderr, "{:>8} {:>7} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10}\n", "trials", "groups", "seconds",
             "results/s", "last/first", "study MB", "resume s", "report s");
  for (int64_t n : trials)
    for (int64_t g : groups) {
      fs::remove_all(dir);
      fs::create_directories(fs::path(dir) / "trials");
      const std::string base = fmt::format(
          "[model]\nhidden = [8]\n[train]\nepochs = {}\n[sweep]\nmethod = \"random\"\ntrials = {}\n{}"
          "[sweep.space]\n\"train.lr\" = {{ distribution = \"log_uniform\", low = 1e-4, high = 1e-1 }}\n"
          "\"train.momentum\" = {{ distribution = \"uniform\", low = 0.5, high = 0.99 }}\n",
          epochs, n, asha ? "[sweep.asha]\nmin_epochs = 1\nreduction = 3\n" : "");
      const SweepConfig sweep = parse_sweep(base, "bench");
      InstantGroups link(int(g), epochs, sweep);
      auto curves = [](int64_t trial, const std::string&) {
        std::map<std::string, std::vector<double>> c;
        const int64_t e = 1 + trial % 3;
        for (int k = 0; k < 19; ++k) c[fmt::format("metric_{:02d}", k)] = std::vector<double>(size_t(e), 0.5 + k);
        return c;
      };
      const auto t0 = Clock::now();
      Coordinator c(sweep, Study{}, Study{}, dir, base, int(g), int(g), link, Deadline{}, curves);
      c.run();  // its progress lines (one per result) go to stdout
      const double secs = seconds_since(t0);
      const auto& t = link.result_times();
      // the first and last tenth of the results, at least four rounds of the groups' (a round is polled
      // back to back, then written)
      const size_t k = std::min(t.size() / 2, std::max(t.size() / 10, size_t(4 * g)));
      const double first = std::chrono::duration<double>(t[k] - t[0]).count() / double(k);
      const double last = std::chrono::duration<double>(t.back() - t[t.size() - 1 - k]).count() / double(k);
      const std::string study = (fs::path(dir) / "study.h5").string();
      const auto r0 = Clock::now();
      Study s = read_study(study);
      SchedulePolicy policy(schedule_options(sweep, base));
      Search search(sweep, base);
      replay_study(s, sweep, policy, search);
      const double resume = seconds_since(r0);
      const auto p0 = Clock::now();
      const Study again = read_study(study);
      const double report = seconds_since(p0);
      fmt::print(stderr, "{:>8} {:>7} {:>10.2f} {:>10.0f} {:>11.2f}x {:>10.1f} {:>10.2f} {:>10.2f}\n", n, g, secs,
                 double(t.size()) / secs, last / first, double(fs::file_size(study)) / 1e6, resume, report);
    }
  fs::remove_all(dir);
  return 0;
}
