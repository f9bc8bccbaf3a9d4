// The one parser for JSON read from outside: the depth bound, checked before
// anything is built (issue 24: a nested "error" crash-looped a listener).
#include "json_read.h"

#include <gtest/gtest.h>

#include "config.h"
#include "jsd_limits.h"

using namespace jsd;
using nlohmann::json;

namespace {
std::string nested(int depth, const std::string& inner = "1", char open = '[', char close = ']') {
  return std::string(size_t(depth), open) + inner + std::string(size_t(depth), close);
}
}  // namespace

TEST(JsonRead, DepthUpToTheLimitParses) {
  json j;
  EXPECT_TRUE(parse_json(nested(kMaxJsonDepth), j));
  std::string why;
  EXPECT_FALSE(parse_json(nested(kMaxJsonDepth + 1), j, why));
  EXPECT_TRUE(j.is_discarded());
  EXPECT_EQ(why, "nested deeper than 32 levels");
}

TEST(JsonRead, ObjectsCountLikeArrays) {
  std::string deep;
  for (int i = 0; i <= kMaxJsonDepth; ++i) deep += R"({"a":)";
  deep += "1" + std::string(size_t(kMaxJsonDepth + 1), '}');
  json j;
  EXPECT_FALSE(parse_json(deep, j));
  EXPECT_TRUE(parse_json(deep.substr(5, deep.size() - 6), j));
}

// The reproducer: 300,000 levels in a job object's "error", which
// dump() would recurse through. Refused at once, without a crash.
TEST(JsonRead, HugeNestingIsRefusedWithoutRecursion) {
  std::string body = R"({"id":"deep1","error":)" + nested(300000) + "}";
  json j;
  std::string why;
  EXPECT_FALSE(parse_json(body, j, why));
  EXPECT_EQ(why, "nested deeper than 32 levels");
  // Unbalanced, or only opening brackets: the same.
  EXPECT_FALSE(parse_json(std::string(300000, '['), j));
  EXPECT_FALSE(parse_json(std::string(300000, '{'), j));
}

TEST(JsonRead, BracketsInStringsDoNotCount) {
  json j;
  std::string s = R"({"a":")" + std::string(1000, '[') + R"(\"[[[","b":[1]})";
  ASSERT_TRUE(parse_json(s, j));
  EXPECT_EQ(j["b"][0], 1);
  // An escaped backslash ends its escape: the quote after it closes the string.
  std::string t = R"(["\\",)" + nested(kMaxJsonDepth) + "]";
  EXPECT_FALSE(parse_json(t, j));
}

TEST(JsonRead, NotJsonSaysSo) {
  json j;
  std::string why;
  EXPECT_FALSE(parse_json("{", j, why));
  EXPECT_EQ(why, "not valid JSON");
  // A closing bracket first: unbalanced, refused by the parser.
  EXPECT_FALSE(parse_json("]" + nested(100), j, why));
  EXPECT_EQ(why, "not valid JSON");
  EXPECT_TRUE(json_depth_within("", 0));
  EXPECT_FALSE(json_depth_within("[]", 0));
}

TEST(JsonRead, TheConfigurationHasTheSameBound) {
  Config c;
  std::vector<std::string> errors;
  std::string text = R"({"node":"alpha","x":)" + nested(100000) + "}";
  EXPECT_FALSE(parse_config_text(text, c, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "not valid JSON: nested deeper than 32 levels");
}
