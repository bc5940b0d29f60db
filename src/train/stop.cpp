#include "train/stop.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>

#include "error.h"

namespace rs {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) { g_signal = sig; }

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "2026-11-30T06:00:00" in local time (Slurm prints its times that way).
bool parse_local_time(const std::string& text, double* at) {
  std::tm tm{};
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &tail) != 6)
    return false;
  tm.tm_year -= 1900, tm.tm_mon -= 1, tm.tm_isdst = -1;
  const std::time_t t = std::mktime(&tm);
  if (t == std::time_t(-1)) return false;
  *at = double(t);
  return true;
}

// The end time squeue reports for this job; false if it has none (or squeue is missing).
bool squeue_end_time(const std::string& job, double* at) {
  const std::string cmd = "squeue -h -o %e -j '" + job + "' 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return false;
  char buf[128] = {0};
  const bool got = std::fgets(buf, sizeof buf, p) != nullptr;
  pclose(p);
  if (!got) return false;
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return parse_local_time(s, at);  // "N/A", "Unknown", "NONE": no limit
}

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() { return int(g_signal); }

std::string stop_cause() { return stop_signal() ? fmt::format("signal {}", stop_signal()) : "the deadline"; }

bool parse_deadline(const std::string& text, double now, double* at) {
  if (text.empty()) return false;
  char* end = nullptr;
  if (text[0] == '+') {
    const double s = std::strtod(text.c_str() + 1, &end);
    if (!end || *end || !(s >= 0)) return false;
    *at = now + s;
    return true;
  }
  const double t = std::strtod(text.c_str(), &end);
  if (end && !*end) {
    if (!(t > 0)) return false;
    *at = t;
    return true;
  }
  return parse_local_time(text, at);
}

double Deadline::left() const {
  if (at <= 0) return std::numeric_limits<double>::infinity();
  return at - margin - now_seconds();
}

std::string Deadline::describe() const {
  if (at <= 0) return "none";
  const std::time_t t = std::time_t(at);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
  return fmt::format("{} ({}), work stops {:.0f} s before it", when, source, margin);
}

Deadline find_deadline(const std::string& option, double margin, const Comm& world) {
  Deadline d;
  d.margin = margin;
  world.root_only([&] {
    const double now = now_seconds();
    if (!option.empty()) {
      if (!parse_deadline(option, now, &d.at))
        fail("--deadline {}: expected seconds since the epoch, +SECONDS, or YYYY-MM-DDTHH:MM:SS", option);
      d.source = "--deadline";
    } else if (const char* e = std::getenv("SLURM_JOB_END_TIME"); e && *e && parse_deadline(e, now, &d.at)) {
      d.source = "SLURM_JOB_END_TIME";
    } else if (const char* job = std::getenv("SLURM_JOB_ID"); job && *job && squeue_end_time(job, &d.at)) {
      d.source = "squeue";
    }
  });
  world.bcast(d.at);
  world.bcast_string(d.source);
  return d;
}

}  // namespace rs
