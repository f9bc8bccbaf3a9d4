// Names of nodes, objects, jobs and ids.
#pragma once

#include <string_view>

namespace jsd {

// 1..64 of [A-Za-z0-9._:-], not starting with '-' or '.': no slashes, spaces
// or shell metacharacters, because names end up in argv[0] and file names.
bool valid_name(std::string_view s);

}  // namespace jsd
