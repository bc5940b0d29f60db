// The data cache sizes the CPU kernels block for, read from Linux's sysfs
// (/sys/devices/system/cpu/cpu0/cache/index*/: level, type, size and
// shared_cpu_list), else from sysconf, else assumed. Read once, on first use;
// the same machine always gives the same sizes, so the blocking (and any
// rounding it implies) is the same in a run and its resume.
#include <unistd.h>

#include <fstream>
#include <string>

#include "kernels_cpu.h"

namespace rs {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// "48K", "2048K", "1M" -> bytes; 0 if unreadable
size_t parse_size(const std::string& s) {
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (...) {
    return 0;
  }
  const char unit = pos < s.size() ? s[pos] : ' ';
  return size_t(v) << (unit == 'K' ? 10 : unit == 'M' ? 20 : unit == 'G' ? 30 : 0);
}

// Logical CPUs in a list such as "0-1,4,6-7"
int count_cpus(const std::string& list) {
  int n = 0;
  size_t i = 0;
  while (i < list.size()) {
    size_t end = list.find(',', i);
    if (end == std::string::npos) end = list.size();
    const std::string part = list.substr(i, end - i);
    const size_t dash = part.find('-');
    try {
      n += dash == std::string::npos ? 1 : std::stoi(part.substr(dash + 1)) - std::stoi(part.substr(0, dash)) + 1;
    } catch (...) {
    }
    i = end + 1;
  }
  return n > 0 ? n : 1;
}

CacheSizes read_caches() {
  CacheSizes c{};
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = read_line(dir + "level"), type = read_line(dir + "type");
    if (level.empty()) break;
    if (type == "Instruction") continue;
    const size_t bytes = parse_size(read_line(dir + "size"));
    if (level == "1") c.l1d = bytes;
    if (level == "2") c.l2 = bytes;
    if (level == "3") c.l3_share = bytes / size_t(count_cpus(read_line(dir + "shared_cpu_list")));
    c.source = "sysfs";
  }
#if defined(_SC_LEVEL2_CACHE_SIZE)
  if (c.l2 == 0) {
    const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 > 0) c.l1d = l1 > 0 ? size_t(l1) : 0, c.l2 = size_t(l2), c.source = "sysconf";
  }
#endif
  if (c.l1d == 0) c.l1d = size_t(32) << 10;
  if (c.l2 == 0) c.l2 = size_t(512) << 10, c.source = "assumed";
  return c;
}

}  // namespace

const CacheSizes& cpu_caches() {
  static const CacheSizes c = read_caches();
  return c;
}

}  // namespace rs
