// The typed reads of a configuration's values (config_parse.cpp): every
// value through an accessor that never throws and adds one line naming its
// key to the errors. Private to config_parse.cpp.
#pragma once

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "json_read.h"
#include "log.h"

namespace jsd::config_values {

using nlohmann::json;

using Errors = std::vector<std::string>;

// A refused value as the message shows it: numbers and short strings as
// written, anything else by its type.
inline std::string shown(const json& v) {
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return printable(dump_json(v), 40);
}

inline std::string range(long long lo, long long hi) { return std::to_string(lo) + "-" + std::to_string(hi); }

inline std::string range(double lo, double hi) {
  char b[64];
  snprintf(b, sizeof b, "%.15g-%.15g", lo, hi);
  return b;
}

// An integer within [lo, hi] (0 <= hi), whatever JSON number type holds it.
// A fraction, a float, a string or an overflowing number is refused; T must
// hold [lo, hi].
template <typename T>
bool get_int(const json& v, const std::string& key, long long lo, long long hi, T& out, Errors& errors) {
  long long n = 0;
  bool ok = false;
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(hi);
    if (ok) n = static_cast<long long>(u);
  } else if (v.is_number_integer()) {
    n = v.get<int64_t>();
    ok = true;
  }
  if (!ok || n < lo || n > hi) {
    errors.push_back(key + ": must be an integer in " + range(lo, hi) + ", not " + shown(v));
    return false;
  }
  out = static_cast<T>(n);
  return true;
}

// A finite number within [lo, hi]; `unit` names it in the message.
inline bool get_number(const json& v, const std::string& key, double lo, double hi, const char* unit, double& out,
                       Errors& errors) {
  double d = v.is_number() ? v.get<double>() : NAN;
  if (!std::isfinite(d) || d < lo || d > hi) {
    errors.push_back(key + ": must be a number of " + unit + " in " + range(lo, hi) + ", not " + shown(v));
    return false;
  }
  out = d;
  return true;
}

// A string without NUL: every string here ends up a name, a path, an address
// or an argument, where a NUL would silently cut it short.
inline bool get_string(const json& v, const std::string& key, std::string& out, Errors& errors) {
  if (!v.is_string()) {
    errors.push_back(key + ": must be a string, not " + shown(v));
    return false;
  }
  const auto& s = v.get_ref<const std::string&>();
  if (s.find('\0') != std::string::npos) {
    errors.push_back(key + ": must not contain a NUL character");
    return false;
  }
  out = s;
  return true;
}

inline bool get_bool(const json& v, const std::string& key, bool& out, Errors& errors) {
  if (!v.is_boolean()) {
    errors.push_back(key + ": must be true or false, not " + shown(v));
    return false;
  }
  out = v.get<bool>();
  return true;
}

// An array of strings, appended to out; nothing is appended on a mistake.
inline bool get_strings(const json& v, const std::string& key, std::vector<std::string>& out, Errors& errors,
                        const std::string& what) {
  bool ok = v.is_array();
  if (ok)
    for (auto& x : v) ok = ok && x.is_string() && x.get_ref<const std::string&>().find('\0') == std::string::npos;
  if (!ok) {
    errors.push_back(key + ": must be an array of strings (" + what + ")");
    return false;
  }
  for (auto& x : v) out.push_back(x.get<std::string>());
  return true;
}

}  // namespace jsd::config_values
