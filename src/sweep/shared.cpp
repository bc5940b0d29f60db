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

// A claim file's trial and take-over number: "12" -> (12, 0), "12.3" -> (12, 3); (-1, 0) otherwise.
std::pair<int64_t, int> claim_name(const std::string& name) {
  char* end = nullptr;
  const long long t = std::strtoll(name.c_str(), &end, 10);
  if (end == name.c_str() || t < 0) return {-1, 0};
  if (*end == '\0') return {t, 0};
  if (*end != '.') return {-1, 0};
  char* end2 = nullptr;
  const long n = std::strtol(end + 1, &end2, 10);
  return *end2 == '\0' && n > 0 ? std::pair{int64_t(t), int(n)} : std::pair{int64_t(-1), 0};
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

bool SharedStudy::claim(int64_t trial) {
  return create_exclusive(fs::path(m_shared) / "claims" / std::to_string(trial), m_job + "\n");
}

void SharedStudy::write_alive(const std::string& text) {
  const fs::path p = fs::path(study_dir()) / "alive", tmp = p.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);  // a missed beat is retried at the next
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

bool SharedStudy::has_result(const std::string& job, int64_t trial) const {
  if (const Study* s = job_study(job))
    for (const TrialRow& r : s->rows)
      if (r.id == trial && !retry_on_resume(r)) return true;
  return false;
}

Study SharedStudy::gather(const Study& like) const {
  Study all;
  all.config_text = like.config_text;
  all.keys = like.keys;
  // Each job's groups are numbered from 0 and its times run from its own
  // start: in the merged study the groups follow each other (jobs by name)
  // and the times run from the first job's start (by the nodes' clocks).
  std::map<std::string, std::pair<double, Study>> jobs;  // name -> (start, its study)
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(m_shared) / "jobs", ec))
    if (const Study* s = job_study(e.path().filename().string()))
      jobs.emplace(e.path().filename().string(), std::pair{std::atof(read_text(e.path() / "started").c_str()), *s});
  double first = 0;
  for (const auto& [name, js] : jobs) first = first > 0 && first < js.first ? first : js.first;
  std::set<int64_t> seen;
  int64_t groups = 0;
  for (auto& [name, js] : jobs) {
    auto& [start, s] = js;
    const double shift = start > 0 && first > 0 ? start - first : 0;
    int64_t mine = 0;
    all.sweep_seconds = std::max(all.sweep_seconds, shift + s.sweep_seconds);
    for (TrialRow& r : s.rows) {
      mine = std::max(mine, r.group + 1);
      if (retry_on_resume(r) || !seen.insert(r.id).second) continue;
      r.group += groups, r.start_seconds += shift, r.end_seconds += shift;
      if (const auto c = s.curves.find(r.id); c != s.curves.end()) all.curves[r.id] = std::move(c->second);
      all.rows.push_back(std::move(r));
    }
    groups += mine;
  }
  return all;
}

int64_t SharedStudy::take_over(const std::set<int64_t>& have, size_t* pending) {
  std::map<int64_t, std::pair<int, std::string>> latest;  // trial -> its newest claim (number, file)
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(m_shared) / "claims", ec)) {
    const auto [t, n] = claim_name(e.path().filename().string());
    if (t < 0 || have.count(t)) continue;
    auto [it, fresh] = latest.try_emplace(t, n, e.path().string());
    if (!fresh && n > it->second.first) it->second = {n, e.path().string()};
  }
  *pending = 0;
  int64_t taken = -1;
  for (const auto& [t, claim] : latest) {
    std::string owner = read_text(claim.second);
    if (!owner.empty() && owner.back() == '\n') owner.pop_back();
    // a claim still empty: being written, or its job died in between (no alive file: dead after the timeout)
    if (owner.empty()) owner = "unwritten-" + fs::path(claim.second).filename().string();
    // (a dead owner's own study is read again: its result may have landed after `have` was read)
    if (alive(owner) || taken >= 0 || has_result(owner, t)) {
      ++*pending;
      continue;
    }
    const fs::path next = fs::path(m_shared) / "claims" / (std::to_string(t) + "." + std::to_string(claim.first + 1));
    if (create_exclusive(next, m_job + "\n")) taken = t;
    ++*pending;  // taken here, or by the job that created that file first
  }
  return taken;
}

}  // namespace rs
