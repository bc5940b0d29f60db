// ranksweep export FILE --format csv|json: a study's trials, a run's
// history or a prediction file's rows as a table for tools without HDF5
// (pandas.read_csv, pandas.read_json(orient="records"), spreadsheets);
// --format onnx: a run's model or a study's best (app/export_onnx.cpp).
// Rank 0 reads and writes; the kind of file comes from its format attribute.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>

#include "app/commands.h"
#include "error.h"
#include "io/h5.h"
#include "sweep/study.h"
#include "train/run_file.h"

namespace rs {
namespace {

// A table of text cells; numeric columns are written unquoted in JSON.
struct Table {
  std::vector<std::string> columns;
  std::vector<bool> numeric;
  std::vector<std::vector<std::string>> rows;
  void column(const std::string& name, bool is_number) { columns.push_back(name), numeric.push_back(is_number); }
};

std::string number(double x) { return std::isfinite(x) ? fmt::format("{}", x) : ""; }

Table study_table(const std::string& path) {
  const Study s = read_study(path);
  Table t;
  for (const char* c :
       {"id", "epochs", "best_val_accuracy", "test_accuracy", "wall_seconds", "start_seconds", "end_seconds", "group"})
    t.column(c, true);
  t.column("status", false);
  for (const std::string& k : s.keys) {  // a number (or true/false) in every row: a column of JSON literals
    bool literal = true;
    for (const TrialRow& r : s.rows)
      for (const auto& [key, val] : r.params)
        if (key == k) {
          const std::optional<double> x = val.number();
          literal = literal && ((x && std::isfinite(*x)) || val.node().is_boolean());
        }
    t.column(k, literal);
  }
  t.column("message", false);
  for (const TrialRow& r : s.rows) {
    std::vector<std::string> row{std::to_string(r.id),    std::to_string(r.epochs), number(r.best_val_accuracy),
                                 number(r.test_accuracy), number(r.wall_seconds),   number(r.start_seconds),
                                 number(r.end_seconds),   std::to_string(r.group),  to_string(r.status)};
    for (const std::string& k : s.keys) {
      std::string v;  // none recorded: empty (JSON null)
      for (const auto& [key, val] : r.params)
        if (key == k) v = val.text();
      row.push_back(v);
    }
    row.push_back(r.message);
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table run_table(const std::string& path) {
  const RunFile rf = read_run_file(path);
  Table t;
  const bool numbered = std::count(rf.history.order.begin(), rf.history.order.end(), "epoch") > 0;
  if (!numbered) t.column("epoch", true);  // the history's own column when it has one
  for (const std::string& c : rf.history.order) t.column(c, true);
  for (int64_t e = 0; e < rf.epochs_done; ++e) {
    std::vector<std::string> row;
    if (!numbered) row.push_back(std::to_string(e + 1));
    for (const std::string& c : rf.history.order) row.push_back(number(rf.history.cols.at(c)[size_t(e)]));
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table predictions_table(const std::string& path) {
  const H5CrashGuard guard(path);
  H5 f = h5_open_read(path);
  const auto dims = h5_dims(f, "/labels", path);
  if (dims.size() != 2 || h5_dims(f, "/probabilities", path) != dims || h5_dims(f, "/index", path).at(0) != dims[0])
    fail("{}: /labels, /probabilities and /index do not agree in shape", path);
  const size_t n = dims[0], k = dims[1];
  if (double(n) * double(k) > 1e9) fail("{}: {} x {} predictions is too many to export", path, n, k);
  std::vector<int32_t> labels(n * k);
  std::vector<float> probs(n * k);
  std::vector<int64_t> index(n);
  h5_read(f, "/labels", labels.data(), path);
  h5_read(f, "/probabilities", probs.data(), path);
  h5_read(f, "/index", index.data(), path);
  std::vector<int32_t> truth;
  if (h5_exists(f, "/true_labels")) {
    truth.resize(n);
    h5_read(f, "/true_labels", truth.data(), path);
  }
  std::vector<std::string> names;
  if (h5_exists(f, "/names")) names = h5_read_strings(f, "/names", path);
  Table t;
  t.column("index", true);
  if (!names.empty()) t.column("name", false);
  if (!truth.empty()) t.column("true_label", true);
  for (size_t j = 0; j < k; ++j) t.column(fmt::format("label_{}", j + 1), true);
  for (size_t j = 0; j < k; ++j) t.column(fmt::format("probability_{}", j + 1), true);
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> row{std::to_string(index[i])};
    if (!names.empty()) row.push_back(names.at(i));
    if (!truth.empty()) row.push_back(std::to_string(truth[i]));
    for (size_t j = 0; j < k; ++j) row.push_back(std::to_string(labels[i * k + j]));
    for (size_t j = 0; j < k; ++j) row.push_back(number(probs[i * k + j]));
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The length of the well-formed UTF-8 sequence at s[i] (1-4), 0 if there is none.
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const auto cont = [&](size_t k) { return (b(k) & 0xC0) == 0x80; };
  const unsigned c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {  // no overlong forms, no surrogates
    const bool ok = cont(1) && cont(2) && !(c == 0xE0 && b(1) < 0xA0) && !(c == 0xED && b(1) >= 0xA0);
    return ok ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {  // up to U+10FFFF
    const bool ok = cont(1) && cont(2) && cont(3) && !(c == 0xF0 && b(1) < 0x90) && !(c == 0xF4 && b(1) >= 0x90);
    return ok ? 4 : 0;
  }
  return 0;
}

// A JSON string; bytes that are not UTF-8 (file names may hold any) become U+FFFD.
std::string json_string(const std::string& s) {
  std::string q = "\"";
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_length(s, i);
    if (n == 0)
      q += "\\ufffd";
    else if (c == '"' || c == '\\')
      q += '\\', q += char(c);
    else if (c < 0x20)
      q += fmt::format("\\u{:04x}", c);
    else
      q.append(s, i, n);
    i += n ? n : 1;
  }
  return q + "\"";
}

void write_table(std::ostream& o, const Table& t, const std::string& format) {
  if (format == "csv") {
    for (size_t c = 0; c < t.columns.size(); ++c) o << (c ? "," : "") << csv_cell(t.columns[c]);
    o << "\n";
    for (const auto& row : t.rows) {
      for (size_t c = 0; c < row.size(); ++c) o << (c ? "," : "") << csv_cell(row[c]);
      o << "\n";
    }
    return;
  }
  o << "[";  // JSON records; a missing number is null
  for (size_t r = 0; r < t.rows.size(); ++r) {
    o << (r ? ",\n {" : "\n {");
    for (size_t c = 0; c < t.columns.size(); ++c) {
      const std::string& v = t.rows[r][c];
      o << (c ? ", " : "") << json_string(t.columns[c]) << ": "
        << (t.numeric[c] ? (v.empty() ? std::string("null") : v) : json_string(v));
    }
    o << "}";
  }
  o << "\n]\n";
}

}  // namespace

int export_command(const ExportOptions& opt, const Comm& comm) {
  comm.root_only([&] {
    std::error_code ec;
    if (!opt.out.empty() && std::filesystem::equivalent(opt.out, opt.file, ec))
      fail("--out {}: is the file being exported; export never writes over its input", opt.out);
    if (opt.format == "onnx") {
      if (opt.out.empty()) fail("--format onnx: needs --out MODEL.onnx (the model is binary)");
      const std::string bytes = onnx_model(opt);
      return write_file_atomically(opt.out, bytes.data(), bytes.size());
    }
    if (!opt.input.empty()) fail("--input {}: only for --format onnx", opt.input);
    std::string format = "ranksweep-study";  // a study's journal alone (killed before study.h5 was first written)
    if (!study_exists(opt.file) || std::filesystem::exists(opt.file)) {
      const H5CrashGuard guard(opt.file);
      H5 f = h5_open_read(opt.file);
      if (!h5_has_attr(f, "/", "format")) fail("{}: not a ranksweep study, run or prediction file", opt.file);
      format = h5_attr_string(f, "/", "format", opt.file);
    }
    Table t;
    if (format == "ranksweep-study")
      t = study_table(opt.file);
    else if (format == "ranksweep-run")
      t = run_table(opt.file);
    else if (format == "ranksweep-predictions")
      t = predictions_table(opt.file);
    else
      fail("{}: format \"{}\" cannot be exported", opt.file, format);
    std::ostringstream text;
    write_table(text, t, opt.format);
    const std::string s = text.str();
    if (!opt.out.empty()) return write_file_atomically(opt.out, s.data(), s.size());
    if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0)
      throw WriteError(fmt::format("standard output: cannot write: {}", std::strerror(errno)));
  });
  return 0;
}

}  // namespace rs
