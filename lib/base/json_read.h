// Typed reads of a JSON object's members that never throw. nlohmann's
// value() and get() throw on a member of another type, and turn a float into
// an int without a range check (undefined behaviour for 7E51): every message
// and file a process reads from outside is read through these instead.
//
// Each returns false, with err naming the member ("\"id\" must be a string"),
// when the member has another type or is out of range. An absent member
// leaves out as it was and is fine, unless required (then err says it is
// missing).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace jsd {

enum class Need { kOptional, kRequired };

bool read_string(const nlohmann::json& obj, const char* key, std::string& out, std::string& err,
                 Need need = Need::kOptional);
bool read_bool(const nlohmann::json& obj, const char* key, bool& out, std::string& err, Need need = Need::kOptional);
// An integer in [lo, hi]; a number with a fraction or an exponent is not one.
bool read_int(const nlohmann::json& obj, const char* key, int64_t lo, int64_t hi, int64_t& out, std::string& err,
              Need need = Need::kOptional);
// Any finite number in [lo, hi].
bool read_number(const nlohmann::json& obj, const char* key, double lo, double hi, double& out, std::string& err,
                 Need need = Need::kOptional);
// An array of strings.
bool read_strings(const nlohmann::json& obj, const char* key, std::vector<std::string>& out, std::string& err,
                  Need need = Need::kOptional);
// An object whose members are all strings.
bool read_string_map(const nlohmann::json& obj, const char* key, std::map<std::string, std::string>& out,
                     std::string& err, Need need = Need::kOptional);

// The members of one object read with a fallback each, never throwing (a
// reader of replies from peers: a hostile one sends any type). The first
// member of another type or out of range is kept in bad(), so that the
// reader checks once, after it read what it needs: a reply of the wrong
// shape is one error, never an exception.
class JsonFields {
 public:
  explicit JsonFields(const nlohmann::json& obj) : obj_(obj) {}
  JsonFields(nlohmann::json&&) = delete;  // it keeps a reference: never to a temporary
  std::string str(const char* key, std::string dflt = "");
  bool boolean(const char* key, bool dflt);
  int64_t integer(const char* key, int64_t lo, int64_t hi, int64_t dflt);
  double number(const char* key, double lo, double hi, double dflt);
  // "" while every member read so far had its type.
  const std::string& bad() const { return bad_; }

 private:
  void note(const std::string& err) {
    if (bad_.empty()) bad_ = err;
  }
  const nlohmann::json& obj_;
  std::string bad_;
};

// The one parser for JSON read from outside (messages from peers, link
// processes, tools and the job supervisor; outbox entries, records and
// other files; certificates; the configuration). Parses text without
// throwing; false (and a discarded value) when it is not JSON or nests
// arrays and objects deeper than kMaxJsonDepth (jsd_limits.h). The depth is
// checked by one pass over the bytes before nlohmann builds anything, so no
// recursion ever runs over an unbounded document.
bool parse_json(std::string_view text, nlohmann::json& out);
// The same, with why it failed: "not valid JSON" or "nested deeper than 32
// levels".
bool parse_json(std::string_view text, nlohmann::json& out, std::string& why);

// True when the arrays and objects of text (outside its strings) nest at
// most limit deep. Does not validate text otherwise; stops at the first
// bracket too deep.
bool json_depth_within(std::string_view text, int limit);

}  // namespace jsd
