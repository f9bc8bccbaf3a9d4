// A node's name, as against an address (issue 24). Apart from names.h,
// which nearly everything includes.
#pragma once

#include <string_view>

namespace jsd {

// A valid name (names.h) without ':'. A node is called by its name or by
// host:port, and the two must never meet: a certificate named
// "127.0.6.21:4455" took the calls meant for that address.
bool valid_node_name(std::string_view s);
// What a node name may be, for the one line that refuses one.
constexpr const char* kNodeNameRule = "1-64 of letters, digits, . _ -; a name, not an address: no ':' or '/'";

}  // namespace jsd
