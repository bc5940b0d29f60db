#include "config/value.h"

#include <fmt/format.h>

#include <sstream>

namespace rs {

std::string TomlValue::text() const {
  const toml::node& n = node();
  if (n.is_floating_point()) {
    std::string v = fmt::format("{}", n.as_floating_point()->get());  // shortest round trip
    if (v.find_first_of(".eni") == std::string::npos) v += ".0";
    return v;
  }
  toml::table t;
  t.insert_or_assign("v", n);
  std::ostringstream s;
  s << toml::toml_formatter(t);
  const std::string line = s.str();  // "v = <value>"
  return line.substr(line.find('=') + 2);
}

std::optional<double> TomlValue::number() const {
  const toml::node& n = node();
  if (n.is_floating_point()) return n.as_floating_point()->get();
  if (n.is_integer()) return double(n.as_integer()->get());
  return std::nullopt;
}

TomlValue parse_toml_value(const std::string& text) {
  try {
    const toml::table t = toml::parse(std::string_view("v = " + text));
    return TomlValue(*t.get("v"));
  } catch (const toml::parse_error&) {
    return TomlValue(text);
  }
}

std::optional<TomlValue> toml_value_at(const std::string& toml_text, const std::string& key) {
  const toml::table t = toml::parse(std::string_view(toml_text));
  const toml::node* n = t.at_path(key).node();
  if (!n) return std::nullopt;
  return TomlValue(*n);
}

}  // namespace rs
