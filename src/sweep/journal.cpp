#include "sweep/journal.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "error.h"
#include "sweep/protocol.h"

namespace rs {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "ranksweep-study-journal";

json number(double x) {
  if (std::isfinite(x)) return x;
  return std::isnan(x) ? "nan" : x > 0 ? "inf" : "-inf";
}

double to_double(const json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "nan") return std::nan("");
  if (s == "inf" || s == "-inf") return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
  throw json::type_error::create(302, "not a number: " + s, nullptr);
}

uint32_t crc_of(const std::string& s) {
  return uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), uInt(s.size())));
}

std::string line(const json& j) {
  const std::string text = j.dump();  // one line: dump() escapes newlines inside strings
  return fmt::format("{:08x} {}\n", crc_of(text), text);
}

json header(const Study& s) { return {{"seq", 0}, {"format", kFormat}, {"config", s.config_text}, {"keys", s.keys}}; }

json record(int64_t seq, const Study& s, const TrialRow& r) {
  json row = {{"id", r.id},
              {"params", msg::params_text(r.params)},
              {"status", to_string(r.status)},
              {"epochs", r.epochs},
              {"best_val_accuracy", number(r.best_val_accuracy)},
              {"test_accuracy", number(r.test_accuracy)},
              {"wall_seconds", r.wall_seconds},
              {"start_seconds", r.start_seconds},
              {"end_seconds", r.end_seconds},
              {"group", r.group},
              {"message", r.message}};
  json curves = json::object();
  if (const auto c = s.curves.find(r.id); c != s.curves.end())
    for (const auto& [metric, v] : c->second) {
      json a = json::array();
      for (double x : v) a.push_back(number(x));
      curves[metric] = std::move(a);
    }
  return {{"seq", seq}, {"sweep_seconds", s.sweep_seconds}, {"row", std::move(row)}, {"curves", std::move(curves)}};
}

// The JSON of a whole, undamaged line (its CRC matches), else null.
std::optional<json> parse_line(const std::string& l) {
  if (l.size() < 10 || l[8] != ' ') return std::nullopt;
  const std::string text = l.substr(9);
  uint32_t want = 0;
  for (int i = 0; i < 8; ++i) {
    const char c = l[size_t(i)];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    want = want << 4 | uint32_t(d);
  }
  if (crc_of(text) != want) return std::nullopt;
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

TrialRow parse_row(const json& j) {
  TrialRow r;
  r.id = j.at("id").get<int64_t>();
  r.params = msg::parse_params_text(j.at("params").get<std::string>());
  if (!parse_trial_status(j.at("status").get<std::string>(), &r.status))
    throw json::type_error::create(302, "unknown status", nullptr);
  r.epochs = j.at("epochs").get<int64_t>();
  r.best_val_accuracy = to_double(j.at("best_val_accuracy"));
  r.test_accuracy = to_double(j.at("test_accuracy"));
  r.wall_seconds = to_double(j.at("wall_seconds"));
  r.start_seconds = to_double(j.at("start_seconds"));
  r.end_seconds = to_double(j.at("end_seconds"));
  r.group = j.at("group").get<int64_t>();
  r.message = j.at("message").get<std::string>();
  return r;
}

}  // namespace

std::string journal_path(const std::string& study_path) {
  const std::filesystem::path p(study_path);
  return p.filename() == "study.h5" ? (p.parent_path() / "study.journal").string() : std::string();
}

bool apply_journal(const std::string& path, Study& s) {
  if (path.empty()) return false;
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::string l;
  if (!std::getline(f, l) || f.eof()) return false;  // empty, or its header cut short: nothing recorded
  const std::optional<json> h = parse_line(l);
  if (!h || !h->is_object() || h->value("format", "") != kFormat)
    fail("{}: line 1 is not a ranksweep study journal header (damaged file?)", path);
  try {
    if (s.config_text.empty()) {
      s.config_text = h->at("config").get<std::string>();
      s.keys = h->at("keys").get<std::vector<std::string>>();
    }
  } catch (const json::exception& e) {
    fail("{}: line 1: {}", path, e.what());
  }
  std::unordered_map<int64_t, size_t> index;
  for (size_t i = 0; i < s.rows.size(); ++i) index[s.rows[i].id] = i;
  while (std::getline(f, l) && !f.eof()) {  // a last line without its newline was cut short
    const std::optional<json> j = parse_line(l);
    if (!j) break;  // torn or damaged: the records before it stand
    try {
      const int64_t seq = j->at("seq").get<int64_t>();
      if (seq <= s.journal_seq) continue;  // already in study.h5
      TrialRow r = parse_row(j->at("row"));
      std::map<std::string, std::vector<double>> curves;
      for (const auto& [metric, v] : j->at("curves").items()) {
        std::vector<double>& c = curves[metric];
        for (const json& x : v) c.push_back(to_double(x));
      }
      s.sweep_seconds = to_double(j->at("sweep_seconds"));
      s.journal_seq = seq;
      if (!curves.empty()) s.curves[r.id] = std::move(curves);
      if (const auto it = index.find(r.id); it != index.end()) {
        s.rows[it->second] = std::move(r);
      } else {
        index[r.id] = s.rows.size();
        s.rows.push_back(std::move(r));
      }
    } catch (const json::exception&) {
      break;  // a record this program did not write: treated as damage
    } catch (const UserError&) {
      break;
    }
  }
  return true;
}

Journal::Journal(std::string path, const Study& s) : m_path(std::move(path)), m_seq(s.journal_seq) { reset(s); }

Journal::~Journal() {
  if (m_fd >= 0) ::close(m_fd);
}

void Journal::write_all(const std::string& bytes) {
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(m_fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw WriteError(fmt::format("{}: cannot append: {}", m_path, std::strerror(errno)));
    done += size_t(n);
  }
  if (::fdatasync(m_fd) != 0) throw WriteError(fmt::format("{}: cannot sync: {}", m_path, std::strerror(errno)));
}

void Journal::append(const Study& s, const std::vector<const TrialRow*>& rows) {
  std::string bytes;
  for (const TrialRow* r : rows) bytes += line(record(++m_seq, s, *r));
  write_all(bytes);
  m_records += rows.size();
}

void Journal::reset(const Study& s) {
  if (m_fd < 0) m_fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (m_fd < 0) throw WriteError(fmt::format("{}: cannot open: {}", m_path, std::strerror(errno)));
  if (::ftruncate(m_fd, 0) != 0) throw WriteError(fmt::format("{}: cannot empty: {}", m_path, std::strerror(errno)));
  write_all(line(header(s)));
  m_records = 0;
}

void Journal::remove() {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = -1;
  std::error_code ec;
  std::filesystem::remove(m_path, ec);  // left behind: a header alone, which adds nothing
}

}  // namespace rs
