// One TOML value (number, string, boolean or array), typed and copyable. A
// sweep trial's hyperparameters travel to its config as these, never through
// formatted text, so a drawn learning rate is the one trained with and the
// one recorded, to the last bit.
#pragma once

#include <toml++/toml.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rs {

class TomlValue {
 public:
  explicit TomlValue(const toml::node& n) { m_holder.push_back(n); }
  explicit TomlValue(double x) { m_holder.push_back(x); }
  explicit TomlValue(int64_t x) { m_holder.push_back(x); }
  explicit TomlValue(const std::string& s) { m_holder.push_back(s); }

  const toml::node& node() const { return *m_holder.get(0); }
  // The value as --set would take it: "0.1", "[256, 128]", "'adam'"; floats
  // in their shortest round-trip form (parsing the text gives the same bits).
  std::string text() const;
  // The number an integer or float holds; nothing for other types.
  std::optional<double> number() const;
  bool operator==(const TomlValue& o) const { return text() == o.text(); }

 private:
  toml::array m_holder;  // exactly one element: the value
};

// Dotted key -> value, applied on top of a config's text (after --set).
using Overrides = std::vector<std::pair<std::string, TomlValue>>;

// A value from its TOML text ("0.1", "[256]", "'adam'"); text that is not
// TOML is taken as a bare string, as --set does.
TomlValue parse_toml_value(const std::string& text);

// The value at a dotted key of a TOML text; nothing when absent.
std::optional<TomlValue> toml_value_at(const std::string& toml_text, const std::string& key);

}  // namespace rs
