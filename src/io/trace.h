// Per-rank trace (--trace FILE): complete spans ("ph": "X" events of the
// Chrome trace-event format, which Perfetto and chrome://tracing open), kept
// in memory by each process and written by rank 0 at the end (app/launch.h:
// write_trace). Off unless start() was called: then every call is one test of
// a global flag.
//
// Spans on one thread must nest (a span ends before its parent does). Two
// levels: run-level spans (data loading, broadcast, epoch, evaluation,
// checkpoint, trial, coordinator writes) are always kept; step-level spans
// (data, forward, backward, exchange, optimizer of one step) only while
// steps_detailed() is on, which the trainer sets for the first kDetailedSteps
// steps of every epoch (the other steps are one span, "steps"), and never
// beyond kMaxDetailEvents per process: a long run's trace stays a few MB.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace rs::trace {

using Clock = std::chrono::steady_clock;

inline constexpr int64_t kDetailedSteps = 20;         // per epoch (and per trial epoch)
inline constexpr int64_t kMaxDetailEvents = 200'000;  // per process

namespace detail {
extern bool on;
extern thread_local bool steps;
}  // namespace detail

inline bool on() { return detail::on; }
// Starts recording for this process (rank `process`, shown as `name`).
void start(int process, const std::string& name);
// Names the calling thread in the trace (the main thread is "main").
void name_thread(const std::string& name);

// Step-level spans of this thread are kept while on (and the cap is not reached).
inline bool steps_detailed() { return detail::on && detail::steps; }
void detail_steps(bool on);

// A span [begin, end) on the calling thread; `args`: a JSON object's members
// ("\"trial\": 3") or empty. Step-level spans are dropped unless steps_detailed().
void span(const char* name, Clock::time_point begin, Clock::time_point end, const std::string& args = {},
          bool step_level = false);

// A run-level span over the scope's lifetime; its args formatted only while on:
// Scope span("trial", "\"trial\": {}", id).
class Scope {
 public:
  explicit Scope(const char* name) : m_name(name) {
    if (on()) m_begin = Clock::now();
  }
  template <class... Args> Scope(const char* name, fmt::format_string<Args...> args, Args&&... values) : m_name(name) {
    if (!on()) return;
    m_args = fmt::format(args, std::forward<Args>(values)...);
    m_begin = Clock::now();
  }
  ~Scope() {
    if (on()) span(m_name, m_begin, Clock::now(), m_args);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* m_name;
  std::string m_args;
  Clock::time_point m_begin;
};

// This process's events as JSON objects separated by ",\n" (metadata: the
// process and thread names), timestamps in microseconds since `origin_us`
// (wall clock, microseconds since the epoch); empties the buffer.
std::string take_events(int64_t origin_us);
// When this process started recording: wall clock, microseconds since the epoch.
int64_t start_us();
// Step-level spans dropped at the cap.
int64_t dropped();

}  // namespace rs::trace
