// Reading one TOML table with validation: every accessor names the key path
// (and the line) in its error, and finish() reports keys nobody read.
#pragma once

#include <toml++/toml.h>

#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "error.h"

namespace rs {

class Section {
 public:
  // `values`, if given, receives every key read with the value used (the
  // default where the table has none): the effective config.
  Section(const toml::table& t, std::string path, const std::string& origin, toml::table* values = nullptr)
      : m_t(t), m_path(std::move(path)), m_origin(origin), m_values(values) {}

  std::string key_path(std::string_view key) const {
    return m_path.empty() ? std::string(key) : m_path + "." + std::string(key);
  }

  [[noreturn]] void error(const toml::node* n, std::string_view key, const std::string& what) const {
    std::string where = m_origin;
    if (n && n->source().begin.line > 0) where += fmt::format(":{}", n->source().begin.line);
    fail("{}: {}: {}", where, key_path(key), what);
  }

  const toml::node* get(std::string_view key) {
    m_used.insert(std::string(key));
    return m_t.get(key);
  }

  int64_t integer(std::string_view key, int64_t def, int64_t lo, int64_t hi) {
    const toml::node* n = get(key);
    if (!n) return record(key, def);
    if (!n->is_integer()) error(n, key, fmt::format("expected an integer, got {}", type_name(*n)));
    return record(key, check_range(n, key, n->as_integer()->get(), lo, hi));
  }

  double number(std::string_view key, double def, double lo, double hi, bool lo_open = false) {
    const toml::node* n = get(key);
    if (!n) return record(key, def);
    double v;
    if (n->is_floating_point())
      v = n->as_floating_point()->get();
    else if (n->is_integer())
      v = double(n->as_integer()->get());
    else
      error(n, key, fmt::format("expected a number, got {}", type_name(*n)));
    if (!(v >= lo && v <= hi) || (lo_open && v == lo))
      error(n, key, fmt::format("{} is out of range {}{}, {}]", v, lo_open ? "(" : "[", lo, hi));
    return record(key, v);
  }

  bool boolean(std::string_view key, bool def) {
    const toml::node* n = get(key);
    if (!n) return record(key, def);
    if (!n->is_boolean()) error(n, key, fmt::format("expected true or false, got {}", type_name(*n)));
    return record(key, n->as_boolean()->get());
  }

  std::string string(std::string_view key, const std::string& def, const std::vector<std::string>& allowed = {}) {
    const toml::node* n = get(key);
    if (!n) return record(key, def);
    if (!n->is_string()) error(n, key, fmt::format("expected a string, got {}", type_name(*n)));
    std::string v = n->as_string()->get();
    if (allowed.size()) {
      std::string list;
      for (const std::string& a : allowed) {
        if (v == a) return record(key, v);
        list += (list.empty() ? "" : " | ") + a;
      }
      error(n, key, fmt::format("\"{}\" is not one of {}", v, list));
    }
    return record(key, v);
  }

  std::vector<int64_t> int_list(std::string_view key, const std::vector<int64_t>& def, int64_t lo, int64_t hi,
                                bool allow_empty) {
    const toml::node* n = get(key);
    if (!n) return record(key, def);
    if (!n->is_array()) error(n, key, fmt::format("expected an array of integers, got {}", type_name(*n)));
    std::vector<int64_t> out;
    const toml::array& a = *n->as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string k = fmt::format("{}[{}]", key, i);
      if (!a[i].is_integer()) error(&a[i], k, fmt::format("expected an integer, got {}", type_name(a[i])));
      out.push_back(check_range(&a[i], k, a[i].as_integer()->get(), lo, hi));
    }
    if (out.empty() && !allow_empty) error(n, key, "must not be empty");
    return record(key, out);
  }

  // A sub-table; missing -> empty table.
  Section table(std::string_view key) {
    const toml::node* n = get(key);
    if (n && !n->is_table()) error(n, key, fmt::format("expected a table, got {}", type_name(*n)));
    toml::table* values = nullptr;
    if (m_values) values = m_values->emplace(key, toml::table{}).first->second.as_table();
    return Section(n ? *n->as_table() : empty_table(), key_path(key), m_origin, values);
  }

  // An array of tables; missing -> empty.
  std::vector<Section> tables(std::string_view key) {
    const toml::node* n = get(key);
    std::vector<Section> out;
    if (!n) return out;
    if (!n->is_array()) error(n, key, fmt::format("expected an array of tables, got {}", type_name(*n)));
    const toml::array& a = *n->as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string k = fmt::format("{}[{}]", key, i);
      if (!a[i].is_table()) error(&a[i], k, fmt::format("expected a table, got {}", type_name(a[i])));
      out.emplace_back(*a[i].as_table(), key_path(k), m_origin);
    }
    return out;
  }

  bool has(std::string_view key) const { return m_t.contains(key); }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (auto&& [key, v] : m_t) k.emplace_back(key.str());
    return k;
  }

  // Every key not read is unknown.
  void finish() const {
    for (auto&& [k, v] : m_t)
      if (!m_used.count(std::string(k.str()))) error(&v, k.str(), "unknown key");
  }

 private:
  static const toml::table& empty_table() {
    static const toml::table t;
    return t;
  }
  static std::string type_name(const toml::node& n) {
    std::ostringstream s;
    s << n.type();
    return s.str();
  }
  template <class T> T record(std::string_view key, T v) {
    if (!m_values) return v;
    if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      toml::array a;
      for (int64_t x : v) a.push_back(x);
      m_values->insert_or_assign(key, std::move(a));
    } else {
      m_values->insert_or_assign(key, v);
    }
    return v;
  }
  int64_t check_range(const toml::node* n, std::string_view key, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi) error(n, key, fmt::format("{} is out of range [{}, {}]", v, lo, hi));
    return v;
  }

  const toml::table& m_t;
  std::string m_path;
  const std::string& m_origin;
  toml::table* m_values;
  std::set<std::string> m_used;
};

}  // namespace rs
