# The unit tests leave nothing behind: runs every unit test once with
# TEST_TMPDIR and TMPDIR (testing::TempDir(), tests/unit/temp_dir.h) on a
# fresh directory, and fails when anything is left in it afterwards.
# Usage: no_leftovers.sh JSD_UNIT_TESTS_BINARY
set -u
bin=$1
dir=$(mktemp -d /tmp/jsd-unit-leftovers.XXXXXX) || exit 1
out=$(TEST_TMPDIR="$dir" TMPDIR="$dir" "$bin" --gtest_brief=1 2>&1)
rc=$?
left=$(cd "$dir" && ls -A)
rm -rf "$dir"
if [ $rc != 0 ]; then
  printf '%s\n' "$out" | tail -n 40
  echo "no_leftovers: FAIL: the unit tests failed (exit $rc)" >&2
  exit 1
fi
if [ -n "$left" ]; then
  echo "no_leftovers: FAIL: the unit tests left these in the temporary directory:" >&2
  printf '  %s\n' $left >&2
  exit 1
fi
echo "no_leftovers: nothing left behind"
