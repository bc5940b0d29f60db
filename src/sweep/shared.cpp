#include "sweep/shared.h"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "config/config.h"
#include "error.h"
#include "io/h5.h"

namespace fs = std::filesystem;

namespace rs {
namespace {

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Creates `p` holding `text` unless it exists: written to a file of its own,
// then link(2)ed into place (atomic, NFS included). True if this call made it.
bool create_once(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f.flush()) fail("{}: cannot write: {}", tmp.string(), std::strerror(errno));
  }
  const int r = ::link(tmp.c_str(), p.c_str());
  const int err = errno;
  fs::remove(tmp);
  if (r == 0) return true;
  if (err != EEXIST) fail("{}: cannot create: {}", p.string(), std::strerror(err));
  return false;
}

// O_CREAT | O_EXCL: true if this call created `p` (holding `text`).
bool create_exclusive(const fs::path& p, const std::string& text) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    fail("{}: cannot create: {}", p.string(), std::strerror(errno));
  }
  const bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  ::close(fd);
  if (!ok) fail("{}: cannot write", p.string());
  return true;
}

// A claim file's name: "<trial>[@<epochs>][.<n>]": the trial, the epochs of
// the ASHA promotion it claims (0: the trial's first job), and the take-over
// number (0: the first claim). Trial -1 if the name is not a claim's.
struct ClaimName {
  int64_t trial = -1, epochs = 0;
  int n = 0;
};
ClaimName claim_name(const std::string& name) {
  const auto number = [](const char*& p, int64_t* v) {  // digits at p, moved past
    char* end = nullptr;
    if (*p < '0' || *p > '9') return false;
    errno = 0;
    *v = std::strtoll(p, &end, 10);
    p = end;
    return errno == 0;
  };
  const char* p = name.c_str();
  int64_t t = 0, e = 0, n = 0;
  if (!number(p, &t)) return {};
  if (*p == '@' && !(number(++p, &e) && e > 0)) return {};
  if (*p == '.' && !(number(++p, &n) && n > 0 && n < 1000000)) return {};
  if (*p != '\0') return {};
  return {t, e, int(n)};
}

std::string stage_name(int64_t trial, int64_t epochs) {
  return epochs > 0 ? fmt::format("{}@{}", trial, epochs) : std::to_string(trial);
}

std::string job_name() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  std::string name;
  if (const char* j = std::getenv("SLURM_JOB_ID")) name += std::string("slurm") + j + "-";
  if (const char* t = std::getenv("SLURM_ARRAY_TASK_ID")) name += std::string("task") + t + "-";
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return name + host + "-" + std::to_string(::getpid()) + "-" + std::to_string(ns % 1000000000);
}

}  // namespace

SharedStudy::SharedStudy(std::string dir, const std::string& config_text, const std::string& origin, double timeout)
    : m_dir(std::move(dir)), m_shared((fs::path(m_dir) / "shared").string()), m_job(job_name()), m_timeout(timeout) {
  std::error_code ec;
  fs::create_directories(fs::path(m_shared) / "claims", ec);
  if (!ec) fs::create_directories(study_dir(), ec);
  if (ec) fail("{}: cannot create: {}", m_shared, ec.message());
  const fs::path cfg = fs::path(m_shared) / "config.toml";
  if (!create_once(cfg, config_text)) {
    const std::string theirs = read_text(cfg);
    if (theirs != config_text) {
      std::vector<KeyDifference> d;
      try {
        d = differences(toml::parse(theirs), toml::parse(config_text));
      } catch (const toml::parse_error&) {
      }
      fail("{}: the shared study in {} runs another config ({}); give every job the same config and --set", origin,
           m_dir, d.empty() ? std::string("formatted differently") : d[0].text("the study", origin));
    }
  }
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  create_once(fs::path(study_dir()) / "started", fmt::format("{:.3f}\n", now));
  heartbeat();
}

std::string SharedStudy::study_dir() const { return (fs::path(m_shared) / "jobs" / m_job).string(); }

bool SharedStudy::claim(int64_t trial, int64_t epochs) {
  return create_exclusive(fs::path(m_shared) / "claims" / stage_name(trial, epochs), m_job + "\n");
}

int64_t SharedStudy::reach(const TrialRow& r) {
  if (retry_on_resume(r)) return -1;
  return r.status == TrialStatus::pruned ? r.epochs : INT64_MAX;
}

void SharedStudy::write_alive(const std::string& text) {
  try {
    write_file_atomically((fs::path(study_dir()) / "alive").string(), text.data(), text.size());
  } catch (const WriteError&) {  // a missed beat is retried at the next
  }
}

void SharedStudy::heartbeat() {
  if (m_beats > 0 && std::chrono::duration<double>(Clock::now() - m_beat_at).count() < m_timeout / 4) return;
  write_alive(std::to_string(++m_beats) + "\n");
  m_beat_at = Clock::now();
}

void SharedStudy::done() { write_alive("done\n"); }

bool SharedStudy::alive(const std::string& job) {
  if (job == m_job) return true;
  const std::string now = read_text(fs::path(m_shared) / "jobs" / job / "alive");
  if (now == "done\n") return false;
  auto [it, fresh] = m_seen.try_emplace(job, now, Clock::now());
  if (!fresh && it->second.first != now) it->second = {now, Clock::now()};
  return std::chrono::duration<double>(Clock::now() - it->second.second).count() < m_timeout;
}

const Study* SharedStudy::job_study(const std::string& job) const {
  const fs::path dir = fs::path(m_shared) / "jobs" / job;
  const std::string p = (dir / "study.h5").string();
  if (!study_exists(p)) return nullptr;
  // a study changes only by a rename of study.h5 or an append to its journal: their sizes and times say when
  std::string stamp;
  for (const char* f : {"study.h5", "study.journal"}) {
    std::error_code ec;
    const auto size = fs::file_size(dir / f, ec);
    const auto time = fs::last_write_time(dir / f, ec);
    stamp += fmt::format("{}:{} ", ec ? 0 : size, ec ? 0 : time.time_since_epoch().count());
  }
  Cached& c = m_cache[job];
  if (c.stamp != stamp) c = {stamp, read_study(p)};
  return &c.study;
}

bool SharedStudy::has_result(const std::string& job, int64_t trial, int64_t epochs) const {
  if (const Study* s = job_study(job))
    for (const TrialRow& r : s->rows)
      if (r.id == trial && reach(r) >= epochs) return true;
  return false;
}

std::vector<std::pair<std::string, const Study*>> SharedStudy::job_studies() const {
  std::vector<std::pair<std::string, const Study*>> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(m_shared) / "jobs", ec))
    if (const Study* s = job_study(e.path().filename().string())) v.emplace_back(e.path().filename().string(), s);
  return v;
}

std::map<int64_t, int64_t> SharedStudy::reached(const Study& own) const {
  std::map<int64_t, int64_t> m;
  const auto note = [&](const Study& s) {
    for (const TrialRow& r : s.rows) {
      int64_t& x = m.try_emplace(r.id, -1).first->second;
      x = std::max(x, reach(r));
    }
  };
  for (const auto& [name, s] : job_studies()) note(*s);
  note(own);
  return m;
}

Study SharedStudy::gather(const Study& like) const {
  Study all;
  all.config_text = like.config_text;
  all.keys = like.keys;
  // Each job's groups are numbered from 0 and its times run from its own
  // start: in the merged study the groups follow each other (jobs by name)
  // and the times run from the first job's start (by the nodes' clocks).
  std::map<std::string, std::pair<double, const Study*>> jobs;  // name -> (start, its study)
  for (const auto& [name, s] : job_studies())
    jobs.emplace(name, std::pair{std::atof(read_text(fs::path(m_shared) / "jobs" / name / "started").c_str()), s});
  double first = 0;
  for (const auto& [name, js] : jobs) first = first > 0 && first < js.first ? first : js.first;
  // A trial ASHA promoted in another job has a row in each: the one that went furthest is kept.
  std::map<int64_t, size_t> at;  // trial -> its row in `all`
  int64_t groups = 0;
  for (const auto& [name, js] : jobs) {
    const auto& [start, s] = js;
    const double shift = start > 0 && first > 0 ? start - first : 0;
    int64_t mine = 0;
    all.sweep_seconds = std::max(all.sweep_seconds, shift + s->sweep_seconds);
    for (const TrialRow& job_row : s->rows) {
      mine = std::max(mine, job_row.group + 1);
      if (reach(job_row) < 0) continue;
      const auto [it, fresh] = at.try_emplace(job_row.id, all.rows.size());
      double wall = job_row.wall_seconds;
      if (!fresh) {  // its wall time: every job's part
        TrialRow& old = all.rows[it->second];
        if (reach(old) >= reach(job_row)) {
          old.wall_seconds += wall;
          continue;
        }
        wall += old.wall_seconds;
      }
      TrialRow& r = fresh ? all.rows.emplace_back(job_row) : (all.rows[it->second] = job_row);
      r.wall_seconds = wall, r.group += groups, r.start_seconds += shift, r.end_seconds += shift;
      if (const auto c = s->curves.find(r.id); c != s->curves.end()) all.curves[r.id] = c->second;
    }
    groups += mine;
  }
  return all;
}

SharedStudy::Stage SharedStudy::take_over(const std::map<int64_t, int64_t>& reached, size_t* pending) {
  // trial's stage -> its newest claim (number, file); stages that have their result are left out
  std::map<std::pair<int64_t, int64_t>, std::pair<int, std::string>> latest;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(m_shared) / "claims", ec)) {
    const ClaimName c = claim_name(e.path().filename().string());
    if (c.trial < 0) continue;
    if (const auto r = reached.find(c.trial); r != reached.end() && r->second >= c.epochs) continue;
    auto [it, fresh] = latest.try_emplace({c.trial, c.epochs}, c.n, e.path().string());
    if (!fresh && c.n > it->second.first) it->second = {c.n, e.path().string()};
  }
  *pending = 0;
  Stage taken;
  for (const auto& [stage, claim] : latest) {
    const auto [t, epochs] = stage;
    std::string owner = read_text(claim.second);
    if (!owner.empty() && owner.back() == '\n') owner.pop_back();
    // a claim still empty: being written, or its job died in between (no alive file: dead after the timeout)
    if (owner.empty()) owner = "unwritten-" + fs::path(claim.second).filename().string();
    // (a dead owner's own study is read again: its result may have landed after `reached` was read)
    if (alive(owner) || taken.trial >= 0 || has_result(owner, t, epochs)) {
      ++*pending;
      continue;
    }
    const std::string next = stage_name(t, epochs) + "." + std::to_string(claim.first + 1);
    if (create_exclusive(fs::path(m_shared) / "claims" / next, m_job + "\n")) taken = {t, epochs};
    ++*pending;  // taken here, or by the job that created that file first
  }
  return taken;
}

}  // namespace rs
