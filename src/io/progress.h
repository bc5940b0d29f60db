// Text for progress lines: durations as people read them ("42.0s", "3m07s", "2h05m"), accuracies,
// messages on one line.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>

namespace rs {

inline std::string format_seconds(double s) {
  if (!(s >= 0)) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const int64_t t = int64_t(s + 0.5);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60);
}

// An accuracy (a fraction) as a percentage, "-" where there is none (NaN: no such set).
inline std::string format_percent(double x) { return x == x ? fmt::format("{:.2f}%", 100 * x) : "-"; }

// A message on one line of at most `max` characters (newlines become "; ").
inline std::string one_line(std::string s, size_t max) {
  for (size_t p; (p = s.find('\n')) != std::string::npos;) s.replace(p, 1, "; ");
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

}  // namespace rs
