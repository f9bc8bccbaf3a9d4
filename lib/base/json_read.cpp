#include "json_read.h"

#include <cmath>

#include "jsd_limits.h"

namespace jsd {

using nlohmann::json;

namespace {
// The member, or null when absent (err set when it is required).
const json* member(const json& obj, const char* key, std::string& err, Need need) {
  if (obj.is_object()) {
    auto it = obj.find(key);
    if (it != obj.end()) return &*it;
  }
  if (need == Need::kRequired) err = std::string("\"") + key + "\" is missing";
  return nullptr;
}
bool wrong(const char* key, const char* what, std::string& err) {
  err = std::string("\"") + key + "\" must be " + what;
  return false;
}
}  // namespace

bool read_string(const json& obj, const char* key, std::string& out, std::string& err, Need need) {
  const json* v = member(obj, key, err, need);
  if (!v) return need == Need::kOptional;
  if (!v->is_string()) return wrong(key, "a string", err);
  out = v->get_ref<const std::string&>();
  return true;
}

bool read_bool(const json& obj, const char* key, bool& out, std::string& err, Need need) {
  const json* v = member(obj, key, err, need);
  if (!v) return need == Need::kOptional;
  if (!v->is_boolean()) return wrong(key, "true or false", err);
  out = v->get<bool>();
  return true;
}

bool read_int(const json& obj, const char* key, int64_t lo, int64_t hi, int64_t& out, std::string& err, Need need) {
  const json* v = member(obj, key, err, need);
  if (!v) return need == Need::kOptional;
  std::string range = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (hi < 0 || u > uint64_t(hi) || int64_t(u) < lo) return wrong(key, range.c_str(), err);
    out = int64_t(u);
    return true;
  }
  if (v->is_number_integer()) {
    int64_t i = v->get<int64_t>();
    if (i < lo || i > hi) return wrong(key, range.c_str(), err);
    out = i;
    return true;
  }
  return wrong(key, range.c_str(), err);
}

bool read_number(const json& obj, const char* key, double lo, double hi, double& out, std::string& err, Need need) {
  const json* v = member(obj, key, err, need);
  if (!v) return need == Need::kOptional;
  if (!v->is_number()) return wrong(key, "a number", err);
  double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) return wrong(key, "a finite number in range", err);
  out = d;
  return true;
}

bool read_strings(const json& obj, const char* key, std::vector<std::string>& out, std::string& err, Need need) {
  const json* v = member(obj, key, err, need);
  if (!v) return need == Need::kOptional;
  if (!v->is_array()) return wrong(key, "an array of strings", err);
  std::vector<std::string> got;
  got.reserve(v->size());
  for (auto& e : *v) {
    if (!e.is_string()) return wrong(key, "an array of strings", err);
    got.push_back(e.get_ref<const std::string&>());
  }
  out = std::move(got);
  return true;
}

bool read_string_map(const json& obj, const char* key, std::map<std::string, std::string>& out, std::string& err,
                     Need need) {
  const json* v = member(obj, key, err, need);
  if (!v) return need == Need::kOptional;
  if (!v->is_object()) return wrong(key, "an object of strings", err);
  std::map<std::string, std::string> got;
  for (auto& [k, e] : v->items()) {
    if (!e.is_string()) return wrong(key, "an object of strings", err);
    got[k] = e.get_ref<const std::string&>();
  }
  out = std::move(got);
  return true;
}

bool json_depth_within(std::string_view text, int limit) {
  // Brackets count outside strings only; in a string a backslash escapes
  // the next byte (\" does not end it). For JSON the count is exact; text
  // that is not JSON can only miscount after the point where the parser
  // refuses it (an unbalanced bracket, a stray quote or backslash).
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      if (--depth < 0) return true;  // unbalanced: the parser stops here
    }
  }
  return true;
}

bool parse_json(std::string_view text, json& out, std::string& why) {
  if (!json_depth_within(text, kMaxJsonDepth)) {
    out = json(json::value_t::discarded);
    why = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return false;
  }
  // Without exceptions nlohmann reports every error (a syntax error, a
  // number too large for a double) as a discarded value.
  out = json::parse(text.begin(), text.end(), nullptr, false);
  if (out.is_discarded()) {
    why = "not valid JSON";
    return false;
  }
  return true;
}

bool parse_json(std::string_view text, json& out) {
  std::string why;
  return parse_json(text, out, why);
}

std::string JsonFields::str(const char* key, std::string dflt) {
  std::string out = dflt, err;
  if (read_string(obj_, key, out, err)) return out;
  note(err);
  return dflt;
}

bool JsonFields::boolean(const char* key, bool dflt) {
  bool out = dflt;
  std::string err;
  if (read_bool(obj_, key, out, err)) return out;
  note(err);
  return dflt;
}

int64_t JsonFields::integer(const char* key, int64_t lo, int64_t hi, int64_t dflt) {
  int64_t out = dflt;
  std::string err;
  if (read_int(obj_, key, lo, hi, out, err)) return out;
  note(err);
  return dflt;
}

double JsonFields::number(const char* key, double lo, double hi, double dflt) {
  double out = dflt;
  std::string err;
  if (read_number(obj_, key, lo, hi, out, err)) return out;
  note(err);
  return dflt;
}

}  // namespace jsd
