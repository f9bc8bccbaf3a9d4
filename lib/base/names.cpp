#include "names.h"

#include "node_name.h"

namespace jsd {

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (s[0] == '-' || s[0] == '.') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':';
    if (!ok) return false;
  }
  return true;
}

bool valid_node_name(std::string_view s) { return valid_name(s) && s.find(':') == std::string_view::npos; }

}  // namespace jsd
