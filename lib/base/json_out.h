// JSON output that never throws.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace jsd {

// JSON text that never throws on invalid UTF-8 (bytes are replaced).
inline std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace jsd
