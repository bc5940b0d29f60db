#include "train/stop.h"

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
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

// The latest deadline taken: 9999-12-31T23:59:59 UTC (a time every
// platform's time_t and calendar functions can hold).
constexpr double kLatest = 253402300799.0;

// "2026-11-30T06:00:00" in local time (Slurm prints its times that way): a
// real date and time of day, no field out of its range (mktime would carry
// month 13 into the next year).
bool parse_local_time(const std::string& text, double* at) {
  std::tm tm{};
  char tail = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &tail) != 6)
    return false;
  const std::tm given = tm;
  tm.tm_year -= 1900, tm.tm_mon -= 1, tm.tm_isdst = -1;
  const std::time_t t = std::mktime(&tm);
  if (t == std::time_t(-1) || tm.tm_year + 1900 != given.tm_year || tm.tm_mon + 1 != given.tm_mon ||
      tm.tm_mday != given.tm_mday || tm.tm_hour != given.tm_hour || tm.tm_min != given.tm_min ||
      tm.tm_sec != given.tm_sec)
    return false;
  *at = double(t);
  return *at > 0 && *at <= kLatest;
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
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  if (text[0] == '+') {
    const double s = std::strtod(text.c_str() + 1, &end);
    if (end == text.c_str() + 1 || *end || !(s >= 0) || !(now + s <= kLatest)) return false;
    *at = now + s;
    return true;
  }
  const double t = std::strtod(text.c_str(), &end);
  if (end != text.c_str() && !*end) {
    if (!(t > 0 && t <= kLatest)) return false;
    *at = t;
    return true;
  }
  return parse_local_time(text, at);
}

std::string check_deadline_margin(const std::string& text) {
  char* end = nullptr;
  const double m = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || !(m >= 0 && m <= kLatest)) return "expected seconds, a number >= 0";
  return "";
}

double Deadline::left() const {
  if (at <= 0) return std::numeric_limits<double>::infinity();
  return at - margin - now_seconds();
}

std::string Deadline::describe() const {
  if (at <= 0) return "none";
  const std::time_t t = std::time_t(at);
  std::tm tm{};
  char when[32] = "?";
  if (at <= kLatest && localtime_r(&t, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{} ({}), work stops {:.0f} s before it", when, source, margin);
}

Deadline find_deadline(const std::string& option, double margin, const Comm& world) {
  Deadline d;
  d.margin = margin;
  world.root_only([&] {
    const double now = now_seconds();
    if (!option.empty()) {
      if (!parse_deadline(option, now, &d.at))
        fail(
            "--deadline {}: expected seconds since the epoch, +SECONDS, or a local YYYY-MM-DDTHH:MM:SS (a real date, "
            "up to year 9999)",
            option.substr(0, 80));
      d.source = "--deadline";
    } else if (const char* e = std::getenv("SLURM_JOB_END_TIME"); e && *e) {
      if (!parse_deadline(e, now, &d.at))
        fail("SLURM_JOB_END_TIME={}: expected seconds since the epoch (up to year 9999)", std::string(e).substr(0, 80));
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
