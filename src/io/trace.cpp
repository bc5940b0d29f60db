#include "io/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

namespace rs::trace {
namespace detail {
bool on = false;
thread_local bool steps = false;
}  // namespace detail

namespace {

struct Event {
  const char* name;
  int tid;
  Clock::time_point begin, end;
  std::string args;
};

struct State {
  std::mutex mutex;
  std::vector<Event> events;
  std::vector<std::pair<int, std::string>> threads;  // tid, name
  int process = 0;
  std::string process_name;
  Clock::time_point steady0;
  int64_t wall0_us = 0;  // system clock at steady0
  int64_t detail_events = 0, dropped = 0;
  std::atomic<int> next_tid{0};
};

State& state() {
  static State s;
  return s;
}

int thread_id() {
  thread_local int tid = state().next_tid++;
  return tid;
}

// A JSON string (quotes included); bytes that are not UTF-8 become U+FFFD.
std::string json_text(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

void start(int process, const std::string& name) {
  State& s = state();
  s.process = process;
  s.process_name = name;
  s.steady0 = Clock::now();
  s.wall0_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  s.events.reserve(1 << 16);
  detail::on = true;
  name_thread("main");
}

void name_thread(const std::string& name) {
  if (!on()) return;
  State& s = state();
  const int tid = thread_id();
  std::lock_guard lock(s.mutex);
  s.threads.emplace_back(tid, name);
}

void detail_steps(bool on) { detail::steps = on; }

void span(const char* name, Clock::time_point begin, Clock::time_point end, const std::string& args, bool step_level) {
  if (!on() || (step_level && !detail::steps)) return;
  State& s = state();
  const int tid = thread_id();
  std::lock_guard lock(s.mutex);
  if (step_level && ++s.detail_events > kMaxDetailEvents) {
    ++s.dropped;
    return;
  }
  s.events.push_back(Event{name, tid, begin, end, args});
}

int64_t start_us() { return state().wall0_us; }
int64_t dropped() { return state().dropped; }

std::string take_events(int64_t origin_us) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const double shift = double(s.wall0_us - origin_us);
  const auto us = [&](Clock::time_point t) {
    return shift + std::chrono::duration<double, std::micro>(t - s.steady0).count();
  };
  std::string out = fmt::format(R"({{"ph": "M", "name": "process_name", "pid": {}, "args": {{"name": {}}}}})",
                                s.process, json_text(s.process_name));
  out += fmt::format(R"(,
{{"ph": "M", "name": "process_sort_index", "pid": {}, "args": {{"sort_index": {}}}}})",
                     s.process, s.process);
  for (const auto& [tid, name] : s.threads)
    out += fmt::format(R"(,
{{"ph": "M", "name": "thread_name", "pid": {}, "tid": {}, "args": {{"name": {}}}}})",
                       s.process, tid, json_text(name));
  // By thread, then start (a parent before its children): each thread's spans in order.
  std::stable_sort(s.events.begin(), s.events.end(), [](const Event& a, const Event& b) {
    return a.tid != b.tid ? a.tid < b.tid : a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  for (const Event& e : s.events)
    out += fmt::format(R"(,
{{"ph": "X", "name": "{}", "pid": {}, "tid": {}, "ts": {:.3f}, "dur": {:.3f}{}}})",
                       e.name, s.process, e.tid, us(e.begin), us(e.end) - us(e.begin),
                       e.args.empty() ? std::string() : ", \"args\": {" + e.args + "}");
  s.events.clear();
  return out;
}

}  // namespace rs::trace
